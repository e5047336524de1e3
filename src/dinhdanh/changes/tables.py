"""Tables of the change notifications (domain s.7).

- ``follows``: the persons a partner follows (a follow list with an expiry);
- ``subscriptions``: what a partner wants to hear about (event kinds) for whom (its follow list
  or an area), and where (a webhook URL with its sealed signing secret, or pull only);
- ``change_deliveries``: one row per routed event and subscription, the partner's feed and the
  webhook delivery state (pending, delivered, dead; ``feed`` for a pull-only subscription);
- ``change_cursors``: how far in the outbox the router and the NATS publisher have gone.
"""

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

SCOPES = ("follows", "area")
SUBSCRIPTION_STATES = ("active", "disabled")
DELIVERY_STATUSES = ("pending", "delivered", "dead", "feed")

follows = sa.Table(
    "follows", metadata,
    sa.Column("follow_id", Id, primary_key=True, autoincrement=True),
    sa.Column("client_id", Key(64), nullable=False),  # the partner's OAuth client id
    sa.Column("pid", Key(12), nullable=False),  # as the partner gave it: the list shows what was asked
    # the person it named in the partner's area when followed; none for a PID nobody (visible) holds
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id")),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("client_id", "pid"),
    sa.Index("ix_follows_person_id", "person_id"),
)

subscriptions = sa.Table(
    "subscriptions", metadata,
    sa.Column("subscription_id", Id, primary_key=True, autoincrement=True),
    sa.Column("client_id", Key(64), nullable=False),
    sa.Column("kinds", sa.JSON, nullable=False),  # event kinds, e.g. ["person.died", "card.revoked"]
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("area_code", Key(5)),  # province (2) or commune (5); none: the whole country
    sa.Column("webhook_url", sa.String(500)),  # none: pull only
    sa.Column("secret_sealed", sa.LargeBinary),  # whsec_... sealed by the vault (purpose webhook-secret)
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled_at", UTCDateTime),
    sa.CheckConstraint(one_of("scope", *SCOPES), name="scope"),
    sa.CheckConstraint(one_of("state", *SUBSCRIPTION_STATES), name="state"),
    sa.Index("ix_subscriptions_client_id", "client_id"),
)

change_deliveries = sa.Table(
    "change_deliveries", metadata,
    sa.Column("delivery_id", Id, primary_key=True, autoincrement=True),
    sa.Column("client_id", Key(64), nullable=False),
    sa.Column("subscription_id", Id, sa.ForeignKey("subscriptions.subscription_id"), nullable=False),
    sa.Column("seq", Id, nullable=False),  # outbox.seq
    sa.Column("topic", sa.String(40), nullable=False),
    sa.Column("person_id", Id, nullable=False),  # ordering key
    sa.Column("occurred_at", UTCDateTime, nullable=False),  # the outbox row's created_at
    sa.Column("data", sa.JSON, nullable=False),  # what the partner receives: seq, pid, the event's fields
    sa.Column("status", sa.String(9), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("last_error", sa.String(200)),  # an HTTP status or an exception class: no personal data
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("status", *DELIVERY_STATUSES), name="status"),
    sa.UniqueConstraint("subscription_id", "seq"),
    sa.Index("ix_change_deliveries_client_id_seq", "client_id", "seq"),
    sa.Index("ix_change_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    sa.Index("ix_change_deliveries_subscription_id_person_id_seq", "subscription_id", "person_id", "seq"),
)

change_cursors = sa.Table(
    "change_cursors", metadata,
    sa.Column("name", sa.String(40), primary_key=True),  # "router", "nats"
    sa.Column("last_seq", Id, nullable=False, server_default="0"),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
