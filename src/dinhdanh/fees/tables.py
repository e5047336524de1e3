"""Tables of the fees area: payments of payable references, and every callback and transition."""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

STATUSES = ("pending", "paid", "failed", "cancelled", "refunded", "expired")
EVENT_KINDS = ("created", "ipn", "querydr", "refund", "expired")
PENDING = "status = 'pending'"
PAID = "status = 'paid'"

# One row per attempt to pay a reference (a dossier's code: the payable, opaque here). The status
# moves only by one conditional UPDATE from the state it must be in (payments.TRANSITIONS); at most
# one attempt of a reference is pending, and at most one is paid (partial unique indexes).
payments = sa.Table(
    "payments", metadata,
    sa.Column("payment_id", Id, primary_key=True, autoincrement=True),
    sa.Column("reference", sa.String(60), nullable=False, index=True),
    sa.Column("txn_ref", Key(32), nullable=False, unique=True),  # vnp_TxnRef: random, unique for ever
    sa.Column("gateway", sa.String(20), nullable=False),
    sa.Column("amount_vnd", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("order_info", sa.String(255), nullable=False),
    sa.Column("create_date", sa.String(14), nullable=False),  # vnp_CreateDate as sent (querydr's TransactionDate)
    sa.Column("pay_url", sa.Text, nullable=False),  # the signed URL (no secret in it), handed out again while pending
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("gateway_txn_no", sa.String(20)),  # vnp_TransactionNo
    sa.Column("bank_code", sa.String(20)),
    sa.Column("card_type", sa.String(20)),
    sa.Column("response_code", sa.String(2)),
    sa.Column("transaction_status", sa.String(2)),
    sa.Column("pay_date", UTCDateTime),
    sa.Column("paid_at", UTCDateTime),
    sa.Column("closed_at", UTCDateTime),  # failed, cancelled or expired
    sa.Column("refunded_at", UTCDateTime),
    sa.Column("refund_reason", sa.String(500)),
    sa.Column("callback", sa.Text),  # the gateway's signed result that settled it (JSON), for audit
    sa.CheckConstraint(one_of("status", *STATUSES), name="status"),
    sa.CheckConstraint("gateway = 'vnpay'", name="gateway"),
    sa.CheckConstraint("currency = 'VND'", name="currency"),
    sa.CheckConstraint("amount_vnd > 0", name="amount"),
    sa.Index("ix_payments_status_created_at", "status", "created_at"),
    sa.Index("uq_payments_pending_reference", "reference", unique=True,
             sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING)),
    sa.Index("uq_payments_paid_reference", "reference", unique=True,
             sqlite_where=sa.text(PAID), postgresql_where=sa.text(PAID)),
)

# Every verified callback, transaction query, refund and transition, in order: what reconciliation
# and an operator read. ``answer`` is the code we answered (IPN) or the gateway answered (API).
payment_events = sa.Table(
    "payment_events", metadata,
    sa.Column("event_id", Id, primary_key=True, autoincrement=True),
    sa.Column("payment_id", Id, sa.ForeignKey("payments.payment_id"), index=True),  # None: a signed unknown txn_ref
    sa.Column("txn_ref", sa.String(100), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("answer", sa.String(2)),
    sa.Column("from_status", sa.String(10)),
    sa.Column("to_status", sa.String(10)),
    sa.Column("actor", sa.String(60), nullable=False),
    sa.Column("detail", sa.Text),  # JSON: the parameters or the answer (never the hash secret)
    sa.CheckConstraint(one_of("kind", *EVENT_KINDS), name="kind"),
)
