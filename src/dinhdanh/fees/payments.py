"""Payments of a payable reference (a dossier's code) through the gateway: start, callbacks,
reconciliation, refund.

**One state machine.** ``pending`` -> ``paid`` | ``failed`` | ``cancelled`` | ``expired``, and
``paid`` -> ``refunded``: each move is one conditional UPDATE from the state it must leave
(``WHERE status = 'pending'``), so of any number of concurrent callers exactly one moves it and
the others see that they did not. Every verified callback, query, refund and move is a row of
``payment_events``.

**The IPN is what counts.** The browser's return is shown, never trusted for state (it may never
come, or come forged); the gateway's server-to-server IPN, signed with the shared secret, settles
the payment. A repeated IPN answers 02 "already confirmed" and changes nothing; a wrong amount 04
and nothing is paid; a bad signature 97 and nothing is written. An IPN that never arrives is made
up for by ``reconcile``, which asks the gateway (querydr) about payments left pending.

**Network calls never hold a transaction.** ``reconcile`` and ``refund`` take the unit of work and
call the gateway between short units (on SQLite a writing unit holds the database's write lock).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from dinhdanh.calendar.clock import VIETNAM, utcnow
from dinhdanh.fees import vnpay
from dinhdanh.fees.gateway import GatewayClient, GatewayError
from dinhdanh.fees.tables import payment_events, payments
from dinhdanh.fees.vnpay import Merchant, VnpayError
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RegistryError, RuleViolation
from dinhdanh.store.unit_of_work import UnitOfWork

log = logging.getLogger("dinhdanh.fees")

EXPIRY = dt.timedelta(minutes=15)  # vnp_ExpireDate: the gateway takes no payment after it
GRACE = dt.timedelta(minutes=15)  # after the expiry, for a result still on its way
TRANSITIONS = {  # to: the states it may come from
    "paid": ("pending",),
    "failed": ("pending",),
    "cancelled": ("pending",),
    "expired": ("pending",),
    "refunded": ("paid",),
}
_STAMP = {"paid": "paid_at", "failed": "closed_at", "cancelled": "closed_at", "expired": "closed_at",
          "refunded": "refunded_at"}
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,59}")

# Vietnamese wording of this area's refusals, by stable code (web.api.payments adds them to web.errors.VI).
VI = {
    "payment_not_found": "Không tìm thấy khoản thanh toán này.",
    "already_paid": "Hồ sơ này đã được thanh toán phí, lệ phí.",
    "payment_pending": "Hồ sơ này đang có một giao dịch thanh toán chưa kết thúc với số tiền khác; hãy chờ giao "
                       "dịch đó hết hạn (15 phút) rồi thử lại.",
    "not_paid": "Khoản thanh toán chưa ở trạng thái đã thanh toán nên không hoàn tiền được.",
    "refund_refused": "Cổng thanh toán từ chối yêu cầu hoàn tiền.",
    "gateway_unavailable": "Cổng thanh toán tạm thời không phản hồi; hãy thử lại sau.",
    "payments_not_configured": "Chưa cấu hình cổng thanh toán.",
}


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class AlreadyPaid(RuleViolation):
    code = "already_paid"


class PaymentPending(Conflict):
    code = "payment_pending"


class NotPaid(RuleViolation):
    code = "not_paid"


class RefundRefused(RuleViolation):
    code = "refund_refused"


class GatewayUnavailable(RegistryError):
    code = "gateway_unavailable"


@dataclass(frozen=True)
class StartedPayment:
    payment_id: int
    txn_ref: str
    pay_url: str
    amount_vnd: int
    expires_at: dt.datetime
    reused: bool  # the reference's pending attempt, handed out again

    def as_dict(self) -> dict:
        return {"payment_id": self.payment_id, "txn_ref": self.txn_ref, "pay_url": self.pay_url,
                "amount_vnd": self.amount_vnd, "expires_at": self.expires_at.isoformat(), "reused": self.reused}


def _reference(reference: object) -> str:
    if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
        raise InvalidInput("the reference is 1 to 60 letters, digits or . _ : / - (a dossier's code)",
                           field="reference")
    return reference


def plain_order_info(text: str) -> str:
    """``vnp_OrderInfo`` as VNPAY asks for it: Vietnamese without diacritics, no special characters.

    >>> plain_order_info("Lệ phí cấp thẻ Căn cước — Đà Nẵng")
    'Le phi cap the Can cuoc Da Nang'
    """
    text = text.replace("Đ", "D").replace("đ", "d")
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    kept = re.sub(r"[^A-Za-z0-9 .,:/_-]+", " ", bare)
    return re.sub(r"\s+", " ", kept).strip()[:255]


def _event(conn: sa.Connection, payment_id: int | None, txn_ref: str, kind: str, now: dt.datetime, *,
           answer: str | None = None, moved: tuple[str | None, str] | None = None, actor: str = "gateway",
           detail: Mapping | None = None) -> None:
    conn.execute(payment_events.insert().values(
        payment_id=payment_id, txn_ref=txn_ref[:100], at=now, kind=kind, answer=answer,
        from_status=moved[0] if moved else None, to_status=moved[1] if moved else None, actor=actor[:60],
        detail=json.dumps(dict(detail), ensure_ascii=False, sort_keys=True) if detail is not None else None))


def _replay_event(conn: sa.Connection, payment_id: int | None, txn_ref: str, answer: str, now: dt.datetime,
                  detail: Mapping) -> None:
    """Record an IPN answered without moving anything (unknown order, wrong amount, already confirmed),
    once: the same signed IPN sent again, by the gateway's retries or by anyone who saw its URL,
    finds its event already there and adds none (a captured URL replayed in a loop would otherwise
    grow the table without bound). Logged, without its parameters."""
    text = json.dumps(dict(detail), ensure_ascii=False, sort_keys=True)
    where = payment_events.c.payment_id == payment_id if payment_id is not None else sa.and_(
        payment_events.c.payment_id.is_(None), payment_events.c.txn_ref == txn_ref[:100])
    seen = conn.execute(sa.select(payment_events.c.event_id).where(
        where, payment_events.c.kind == "ipn", payment_events.c.answer == answer,
        payment_events.c.detail == text).limit(1)).first()
    if seen is not None:
        log.info("an IPN already recorded was sent again (payment %s, answer %s)", payment_id, answer)
        return
    _event(conn, payment_id, txn_ref, "ipn", now, answer=answer, detail=detail)


def _transition(conn: sa.Connection, payment_id: int, to: str, now: dt.datetime, **values) -> bool:
    """Move the payment to ``to`` if it is in a state ``to`` may come from: one conditional UPDATE,
    so of concurrent callers exactly one moves it. True when this call moved it."""
    stmt = (payments.update()
            .where(payments.c.payment_id == payment_id, payments.c.status.in_(TRANSITIONS[to]))
            .values(status=to, **{_STAMP[to]: now}, **values))
    return conn.execute(stmt).rowcount == 1


# ------------------------------------------------------------------------------ start


def start_payment(conn: sa.Connection, merchant: Merchant, reference: str, amount_vnd: int, *, return_url: str,
                  ip_addr: str, order_info: str | None = None, locale: str = "vn", bank_code: str | None = None,
                  actor: str = "system", now: dt.datetime | None = None) -> StartedPayment:
    """An attempt to pay ``amount_vnd`` for ``reference``: the gateway URL to send the payer to.

    The amount comes from the fee schedule (the caller's), never from the payer. A reference
    already paid is refused (``already_paid``); its pending attempt for the same amount is handed
    out again (one payer, two tabs: one payment); one past its expiry and grace is expired first.
    """
    now = now or utcnow()
    reference = _reference(reference)
    txn_ref = secrets.token_hex(10).upper()  # 80 random bits: unguessable, unique for ever
    info = plain_order_info(order_info or f"Thanh toan phi, le phi ho so {reference}") or reference
    expires = now + EXPIRY
    try:  # the request is checked whole before anything is read or written
        url = vnpay.payment_url(merchant, txn_ref=txn_ref, amount_vnd=amount_vnd, order_info=info,
                                return_url=return_url, ip_addr=ip_addr, created=now, expires=expires,
                                locale=locale, bank_code=bank_code)
    except VnpayError as exc:
        field = {"vnp_Amount": "amount_vnd", "vnp_ReturnUrl": "return_url", "vnp_IpAddr": "ip_addr",
                 "vnp_Locale": "locale", "vnp_BankCode": "bank_code", "vnp_OrderInfo": "order_info"}
        raise InvalidInput(str(exc), field=field.get(exc.field, exc.field)) from None
    # paid and pending read in one statement, so from one snapshot: read in two (PostgreSQL's read
    # committed), an attempt paid between them was in neither, and a new attempt was opened
    current = conn.execute(sa.select(payments).where(payments.c.reference == reference,
                                                     payments.c.status.in_(("paid", "pending")))).all()
    if any(row.status == "paid" for row in current):
        raise AlreadyPaid("this reference is already paid", field="reference")
    pending = current[0] if current else None
    if pending is not None:
        if now < pending.expires_at and pending.amount_vnd == amount_vnd:
            return StartedPayment(pending.payment_id, pending.txn_ref, pending.pay_url, pending.amount_vnd,
                                  pending.expires_at, True)
        if now < pending.expires_at + GRACE:
            raise PaymentPending("another attempt to pay this reference is still open", field="reference")
        if _transition(conn, pending.payment_id, "expired", now):
            _event(conn, pending.payment_id, pending.txn_ref, "expired", now, moved=("pending", "expired"),
                   actor=actor, detail={"reason": "past its expiry when a new attempt started"})
    try:
        with conn.begin_nested():
            payment_id = conn.execute(payments.insert().values(
                reference=reference, txn_ref=txn_ref, gateway="vnpay", amount_vnd=amount_vnd, currency="VND",
                status="pending", order_info=info, create_date=vnpay.gmt7(now), pay_url=url, created_at=now,
                expires_at=expires).returning(payments.c.payment_id)).scalar_one()
    except sa.exc.IntegrityError:  # a concurrent start for the same reference won the pending slot
        raise PaymentPending("another attempt to pay this reference is still open", field="reference") from None
    _event(conn, payment_id, txn_ref, "created", now, moved=(None, "pending"), actor=actor,
           detail={"reference": reference, "amount_vnd": amount_vnd})
    return StartedPayment(payment_id, txn_ref, url, amount_vnd, expires, False)


# ------------------------------------------------------------------------------ callbacks


def handle_ipn(conn: sa.Connection, merchant: Merchant, params: Mapping[str, str], *,
               now: dt.datetime | None = None) -> dict[str, str]:
    """The gateway's IPN (its GET query): the answer ``{"RspCode", "Message"}``, in the caller's
    unit of work. Idempotent: only the first verified result moves a pending payment."""
    now = now or utcnow()
    if not vnpay.is_authentic(params, merchant.hash_secret):
        log.warning("an IPN with an invalid signature was refused")  # nothing of it is kept: anyone can send one
        return vnpay.ipn_answer("97")
    try:
        result = vnpay.payment_result(params)
    except VnpayError as exc:
        log.warning("a signed IPN with a malformed %s", exc.field)
        return vnpay.ipn_answer("99")
    detail = dict(params)
    row = None
    if result.tmn_code == merchant.tmn_code:
        row = conn.execute(sa.select(payments).where(payments.c.txn_ref == result.txn_ref)).first()
    if row is None:
        _replay_event(conn, None, result.txn_ref, "01", now, detail)
        return vnpay.ipn_answer("01")
    if result.amount_vnd != row.amount_vnd:
        log.warning("an IPN with an amount other than the payment's (payment %s)", row.payment_id)
        _replay_event(conn, row.payment_id, row.txn_ref, "04", now, detail)
        return vnpay.ipn_answer("04")
    outcome = result.outcome
    if row.status == "pending":
        if outcome == "pending":  # not final at the gateway: noted; reconcile asks again
            _event(conn, row.payment_id, row.txn_ref, "ipn", now, answer="00", detail=detail)
            return vnpay.ipn_answer("00")
        settled = {"response_code": result.response_code, "transaction_status": result.transaction_status or None,
                   "gateway_txn_no": result.transaction_no, "bank_code": result.bank_code,
                   "card_type": result.card_type, "pay_date": result.pay_date,
                   "callback": json.dumps(detail, ensure_ascii=False, sort_keys=True)}
        if _transition(conn, row.payment_id, outcome, now, **settled):
            _event(conn, row.payment_id, row.txn_ref, "ipn", now, answer="00", moved=("pending", outcome),
                   detail=detail)
            return vnpay.ipn_answer("00")
        # else a concurrent duplicate (or the reconciliation) settled it first: already confirmed
    elif outcome == "paid" and row.status not in ("paid", "refunded"):
        # the gateway took the money after the attempt was closed here: an operator refunds it
        log.warning("payment %s: the gateway reports it paid after it was %s", row.payment_id, row.status)
        detail["late_success"] = "true"
    _replay_event(conn, row.payment_id, row.txn_ref, "02", now, detail)
    return vnpay.ipn_answer("02")


@dataclass(frozen=True)
class ReturnView:
    """What the browser's return says, for display only (the IPN is what counts)."""

    authentic: bool
    txn_ref: str | None
    amount_vnd: int | None
    response_code: str | None
    outcome: str | None

    def message(self, english: bool = False) -> str:
        if not self.authentic:
            return "Invalid signature: this result did not come from the gateway." if english else \
                "Chữ ký không hợp lệ: kết quả này không do cổng thanh toán gửi."
        return vnpay.describe(vnpay.RESPONSE_CODES, self.response_code or "", english=english)


def handle_return(merchant: Merchant, params: Mapping[str, str]) -> ReturnView:
    """The browser's return from the gateway, checked and read; nothing is written."""
    if not vnpay.is_authentic(params, merchant.hash_secret):
        return ReturnView(False, None, None, None, None)
    try:
        result = vnpay.payment_result(params)
    except VnpayError:
        return ReturnView(False, None, None, None, None)
    return ReturnView(True, result.txn_ref, result.amount_vnd, result.response_code, result.outcome)


# ------------------------------------------------------------------------------ reads


def _row_dict(row) -> dict:
    out = {k: row._mapping[k] for k in ("payment_id", "reference", "txn_ref", "gateway", "amount_vnd", "currency",
                                        "status", "order_info", "gateway_txn_no", "bank_code", "response_code",
                                        "transaction_status", "refund_reason")}
    for k in ("created_at", "expires_at", "pay_date", "paid_at", "closed_at", "refunded_at"):
        value = row._mapping[k]
        out[k] = value.astimezone(VIETNAM).isoformat() if value else None  # shown on Việt Nam's clock
    return out


def payment_by_txn_ref(conn: sa.Connection, txn_ref: str) -> dict | None:
    row = conn.execute(sa.select(payments).where(payments.c.txn_ref == txn_ref)).first()
    return _row_dict(row) if row else None


def payments_of(conn: sa.Connection, reference: str, *, events: bool = True) -> list[dict]:
    """Every attempt to pay ``reference``, oldest first, each with its events."""
    rows = conn.execute(sa.select(payments).where(payments.c.reference == _reference(reference))
                        .order_by(payments.c.payment_id)).all()
    out = []
    for row in rows:
        item = _row_dict(row)
        if events:
            item["events"] = [
                {"at": e.at.astimezone(VIETNAM).isoformat(), "kind": e.kind, "answer": e.answer,
                 "from_status": e.from_status, "to_status": e.to_status, "actor": e.actor}
                for e in conn.execute(sa.select(payment_events).where(payment_events.c.payment_id == row.payment_id)
                                      .order_by(payment_events.c.event_id))]
        out.append(item)
    return out


def is_paid(conn: sa.Connection, reference: str) -> bool:
    """Whether ``reference`` is paid (and not refunded): what receiving a dossier that owes a fee waits for."""
    return conn.execute(sa.select(payments.c.payment_id).where(payments.c.reference == _reference(reference),
                                                               payments.c.status == "paid")).first() is not None


# ------------------------------------------------------------------------------ reconcile


def _settle_from_query(conn: sa.Connection, row, answer: dict, now: dt.datetime, actor: str) -> str:
    """Apply a querydr answer to a pending payment; what happened, in one word."""
    code, status = str(answer.get("vnp_ResponseCode", "")), str(answer.get("vnp_TransactionStatus", ""))
    detail = {k: str(v) for k, v in answer.items()}
    past = now >= row.expires_at + GRACE
    to = None
    if code == "00":
        try:
            amount = vnpay.amount_of(answer.get("vnp_Amount"))
        except VnpayError:
            amount = None
        if status == "00" and amount != row.amount_vnd:
            log.warning("payment %s: the gateway reports another amount", row.payment_id)
            _event(conn, row.payment_id, row.txn_ref, "querydr", now, answer=code, actor=actor, detail=detail)
            return "amount_mismatch"
        if status == "00":
            to = "paid"
        elif status == "02":
            to = "failed"
        elif status == "01" and past:
            to = "expired"
    elif code == "91" and past:  # the gateway never saw a payment and no longer takes one
        to = "expired"
    if to is not None:
        values = {"response_code": code if to != "paid" else "00", "transaction_status": status or None}
        if to == "paid":
            values.update(gateway_txn_no=str(answer.get("vnp_TransactionNo") or "")[:20] or None,
                          bank_code=str(answer.get("vnp_BankCode") or "")[:20] or None,
                          callback=json.dumps(detail, ensure_ascii=False, sort_keys=True))
            pay_date = answer.get("vnp_PayDate")
            if pay_date:
                try:
                    values["pay_date"] = vnpay.parse_gmt7(str(pay_date), "vnp_PayDate")
                except VnpayError:
                    pass
        if _transition(conn, row.payment_id, to, now, **values):
            _event(conn, row.payment_id, row.txn_ref, "querydr", now, answer=code, moved=("pending", to),
                   actor=actor, detail=detail)
            return to
        _event(conn, row.payment_id, row.txn_ref, "querydr", now, answer=code, actor=actor, detail=detail)
        return "already_settled"
    _event(conn, row.payment_id, row.txn_ref, "querydr", now, answer=code[:2], actor=actor, detail=detail)
    return "still_pending"


def reconcile(uow: UnitOfWork, client: GatewayClient, day: dt.date | None = None, *,
              older_than: dt.timedelta = EXPIRY, actor: str = "reconcile", now: dt.datetime | None = None) -> dict:
    """Ask the gateway (querydr) about every payment still pending ``older_than`` after it started
    (created on Việt Nam's ``day``, or any day) and settle it: paid, failed, or expired once the
    gateway can no longer take it. The IPN that never came, made up for. Each payment is settled in
    its own short unit, by the same conditional UPDATE as the IPN (whichever comes first wins).
    Returns the counts by result."""
    now = now or utcnow()
    query = sa.select(payments).where(payments.c.status == "pending", payments.c.created_at <= now - older_than)
    if day is not None:
        start = dt.datetime.combine(day, dt.time(), VIETNAM).astimezone(dt.UTC)
        query = query.where(payments.c.created_at >= start, payments.c.created_at < start + dt.timedelta(days=1))
    with uow.read() as conn:
        pending = conn.execute(query.order_by(payments.c.payment_id)).all()
    counts: dict[str, int] = {}
    for row in pending:
        try:
            answer = client.querydr(txn_ref=row.txn_ref, transaction_date=row.create_date, order_info=row.order_info,
                                    transaction_no=row.gateway_txn_no)
        except GatewayError as exc:
            log.warning("reconcile: payment %s not answered: %s", row.payment_id, exc)
            counts["unanswered"] = counts.get("unanswered", 0) + 1
            continue
        with uow.begin() as conn:
            what = _settle_from_query(conn, row, answer, now, actor)
        counts[what] = counts.get(what, 0) + 1
    return {"checked": len(pending), **dict(sorted(counts.items()))}


# ------------------------------------------------------------------------------ refund


def refund(uow: UnitOfWork, client: GatewayClient, payment_id: int, reason: str, *, actor: str,
           now: dt.datetime | None = None) -> dict:
    """Give a paid payment back (a refused dossier whose service's rule refunds the fee): VNPAY's
    refund (``vnp_Command=refund``, the whole amount), then ``paid`` -> ``refunded``.

    The gateway is asked outside any transaction; a refund it already has (94) counts as given, so
    a retry after a crash between the two steps completes it. Refused: ``refund_refused``; no
    answer: ``gateway_unavailable``; the payment stays paid either way."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise InvalidInput("a refund needs its reason (at most 500 characters)", field="reason")
    with uow.read() as conn:
        row = conn.execute(sa.select(payments).where(payments.c.payment_id == payment_id)).first()
    if row is None:
        raise PaymentNotFound("no such payment", field="payment_id")
    if row.status != "paid":
        raise NotPaid(f"the payment is {row.status}, not paid", field="payment_id")
    try:
        answer = client.refund(txn_ref=row.txn_ref, amount_vnd=row.amount_vnd, transaction_no=row.gateway_txn_no,
                               transaction_date=row.create_date, created_by=actor[:250],
                               order_info=f"Hoan tra {row.txn_ref}")
    except GatewayError as exc:
        raise GatewayUnavailable(f"the gateway did not answer the refund ({exc})") from None
    code = str(answer.get("vnp_ResponseCode", ""))
    now = now or utcnow()
    with uow.begin() as conn:
        detail = {k: str(v) for k, v in answer.items()}
        if code not in ("00", "94"):
            _event(conn, row.payment_id, row.txn_ref, "refund", now, answer=code[:2], actor=actor, detail=detail)
        elif _transition(conn, row.payment_id, "refunded", now, refund_reason=reason.strip()[:500]):
            _event(conn, row.payment_id, row.txn_ref, "refund", now, answer=code, moved=("paid", "refunded"),
                   actor=actor, detail=detail)
            return {"payment_id": row.payment_id, "status": "refunded", "gateway_code": code}
        else:
            _event(conn, row.payment_id, row.txn_ref, "refund", now, answer=code, actor=actor, detail=detail)
            return {"payment_id": row.payment_id, "status": "refunded", "gateway_code": code}
    raise RefundRefused(vnpay.describe(vnpay.REFUND_CODES, code, english=True), field="payment_id")
