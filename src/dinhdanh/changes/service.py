"""What a partner manages itself: its follow list, its subscriptions (with the webhook secret
shown once), its dead letters, and the pull feed of the events routed to it.

Every function takes the partner row (``exchange.partners.active_partner(..., "subscribe")``) and a
connection inside the caller's transaction; bad input raises ``InvalidInput`` and changes nothing.
Follows are limited to the partner's area and written to the access log (see "follows" below);
webhook URLs are checked by ``changes.targets`` (no target inside the platform).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.audit.service import record_access
from dinhdanh.changes import targets
from dinhdanh.changes.tables import SCOPES, change_deliveries, follows, subscriptions
from dinhdanh.exchange.partners import area_of, check_area_code
from dinhdanh.exchange.tables import partners
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import InvalidInput, NotFound
from dinhdanh.registry.tables import former_pids, persons
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

# The event kinds partners may subscribe to (outbox topics). Births are left out: nobody can follow
# a person before the PID exists, and an area's births are not a partner's business.
KINDS = ("person.died", "person.missing", "person.moved", "person.renamed", "person.pid_changed",
         "person.corrected", "card.issued", "card.revoked", "eid.locked")
MAX_FOLLOW_DAYS = 366
MAX_PIDS_PER_CALL = 1000
MAX_SUBSCRIPTIONS = 20  # active ones per partner
MAX_FEED_PAGE = 1000
SECRET_PURPOSE = "webhook-secret"
PID = re.compile(r"^[0-9]{12}$")


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def open_secret(vault: Vault, sealed: bytes) -> str:
    return vault.open(sealed, SECRET_PURPOSE).decode()


# ------------------------------------------------------------------------------------ follows
#
# A partner sees only the persons of its area (``partners.area_of``): a person outside it is, here
# as in verification and e-KYC, exactly an unknown PID. And the follow list is no oracle: every
# well-formed PID is answered "following" with its expiry and kept as given (``follows.pid``), so
# listing the follows shows what was asked, not which of it are persons. Only the persons the
# partner may see are linked (``follows.person_id``), notified about and written to the access log
# (action ``follow`` / ``unfollow``, in the request's transaction); an unknown PID is simply never
# notified about.


def _visible(conn: sa.Connection, pids: list[str], area: Area) -> dict[str, int]:
    """The person behind each PID (current or former), for the persons in ``area`` only."""
    if not pids:
        return {}
    found = dict(conn.execute(sa.select(persons.c.pid, persons.c.person_id)
                              .where(persons.c.pid.in_(pids), area.clause())).all())
    rest = [p for p in pids if p not in found]
    if rest:
        found.update(conn.execute(sa.select(former_pids.c.pid, former_pids.c.person_id)
                                  .join(persons, persons.c.person_id == former_pids.c.person_id)
                                  .where(former_pids.c.pid.in_(rest), area.clause())).all())
    return found


def _audit(conn: sa.Connection, partner, person_ids, action: str) -> None:
    ids = list(dict.fromkeys(person_ids))
    if ids:
        record_access(conn, f"partner:{partner.client_id}", ids, action, partner.purposes[0], outcome="ok")


def _upsert_follow(conn: sa.Connection):
    """INSERT ... ON CONFLICT (client_id, pid) DO UPDATE: one statement, so two concurrent follows of
    the same PID both succeed (the later expiry wins) instead of one failing on the unique key."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(follows).values(client_id=sa.bindparam("client_id"), pid=sa.bindparam("pid"),
                                  person_id=sa.bindparam("person_id"), expires_at=sa.bindparam("expires_at"),
                                  created_at=sa.bindparam("created_at"))
    return stmt.on_conflict_do_update(index_elements=[follows.c.client_id, follows.c.pid], set_={
        "expires_at": stmt.excluded.expires_at, "person_id": stmt.excluded.person_id})


def follow(conn: sa.Connection, partner, pids: list[str], days: int, now: dt.datetime | None = None) -> dict:
    """Follow ``pids`` for ``days`` (a second call renews the expiry). Malformed PIDs are reported
    per item; every other one is answered "following" (see above), the persons among them followed."""
    now = now or utcnow()
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_FOLLOW_DAYS:
        raise InvalidInput(f"Follow for 1 to {MAX_FOLLOW_DAYS} days.", field="days")
    if not pids or len(pids) > MAX_PIDS_PER_CALL:
        raise InvalidInput(f"Give 1 to {MAX_PIDS_PER_CALL} PIDs a call.", field="pids")
    expires = now + dt.timedelta(days=days)
    wanted = list(dict.fromkeys(pids))
    known = _visible(conn, [p for p in wanted if isinstance(p, str) and PID.match(p)], area_of(partner))
    items, rows = [], []
    for pid in wanted:
        if not isinstance(pid, str) or not PID.match(pid):
            items.append({"pid": str(pid)[:20], "status": "invalid"})
            continue
        items.append({"pid": pid, "status": "following", "expires_at": expires.isoformat()})
        rows.append({"client_id": partner.client_id, "pid": pid, "person_id": known.get(pid),
                     "expires_at": expires, "created_at": now})
    if rows:
        conn.execute(_upsert_follow(conn), rows)
    _audit(conn, partner, [r["person_id"] for r in rows if r["person_id"] is not None], "follow")
    return {"items": items, "following": len(rows)}


def list_follows(conn: sa.Connection, partner, *, after: int = 0, limit: int = 100,
                 now: dt.datetime | None = None) -> dict:
    """The partner's current follows, as it gave them (every well-formed PID it follows, person or
    not: the list tells nothing the partner did not send)."""
    now = now or utcnow()
    rows = conn.execute(
        sa.select(follows.c.follow_id, follows.c.pid, follows.c.expires_at, follows.c.created_at)
        .where(follows.c.client_id == partner.client_id, follows.c.follow_id > after, follows.c.expires_at > now)
        .order_by(follows.c.follow_id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [{"pid": r.pid, "expires_at": r.expires_at.isoformat(), "created_at": r.created_at.isoformat()}
                      for r in rows],
            "next_after": rows[-1].follow_id if more else None}


def unfollow(conn: sa.Connection, partner, pids: list[str]) -> dict:
    """Stop following ``pids`` (and the persons they name, under any PID they were followed by).
    ``removed`` counts the distinct PIDs given: like ``follow``, the answer does not tell which of
    them are persons."""
    if not pids or len(pids) > MAX_PIDS_PER_CALL:
        raise InvalidInput(f"Give 1 to {MAX_PIDS_PER_CALL} PIDs a call.", field="pid")
    bad = [p for p in pids if not isinstance(p, str) or not PID.match(p)]
    if bad:
        raise InvalidInput("A PID is 12 digits.", field="pid")
    wanted = list(dict.fromkeys(pids))
    ids = list(dict.fromkeys(_visible(conn, wanted, area_of(partner)).values()))
    named = follows.c.pid.in_(wanted)
    if ids:
        named = sa.or_(named, follows.c.person_id.in_(ids))
    conn.execute(follows.delete().where(follows.c.client_id == partner.client_id, named))
    _audit(conn, partner, ids, "unfollow")
    return {"removed": len(wanted)}


# ------------------------------------------------------------------------------ subscriptions


def check_webhook_url(url: str) -> str:
    """https to a public address; http only to loopback when the operator allows it
    (``changes.targets.check_url``; refused with the code ``webhook_url_not_allowed``)."""
    return targets.check_url(url)


def check_area(partner, area_code: str | None) -> str | None:
    """The subscription's area: inside the partner's own (a national partner may pick any, or none)."""
    own = partner.area_code
    if area_code is None:
        return own
    code = check_area_code(area_code, field="area_code")
    if own is None:  # a national partner picks any area, or the whole country
        return code
    commune = code if code is not None and len(code) == 5 else None
    province = places.COMMUNES[commune].province_code if commune else code
    if code is None or not Area.of_code(own).covers_place(province, commune):
        raise InvalidInput(f"The area must lie within the partner's area ({own}).", field="area_code")
    return code


def subscription_view(row) -> dict:
    return {"subscription_id": row.subscription_id, "kinds": list(row.kinds), "scope": row.scope,
            "area_code": row.area_code, "webhook_url": row.webhook_url, "state": row.state,
            "created_at": row.created_at.isoformat()}


def create_subscription(conn: sa.Connection, vault: Vault, partner, *, kinds: list[str], scope: str,
                        area_code: str | None = None, webhook_url: str | None = None) -> dict:
    """A new subscription; with a webhook URL, its signing secret is in the answer this once."""
    chosen = list(dict.fromkeys(kinds or []))
    unknown = [k for k in chosen if k not in KINDS]
    if not chosen or unknown:
        raise InvalidInput(f"Kinds must be some of: {', '.join(KINDS)}.", field="kinds")
    if scope not in SCOPES:
        raise InvalidInput(f"The scope is one of {', '.join(SCOPES)}.", field="scope")
    if scope == "area":
        area_code = check_area(partner, area_code)
    elif area_code is not None:
        raise InvalidInput("An area is given only with the scope 'area'.", field="area_code")
    secret = None
    if webhook_url is not None:
        webhook_url = check_webhook_url(webhook_url)
        secret = new_secret()
    # the partner's row first (PostgreSQL): two subscriptions made at once are counted one after
    # the other, never both below the limit
    conn.execute(sa.select(partners.c.partner_id).where(partners.c.client_id == partner.client_id).with_for_update())
    active = conn.execute(sa.select(sa.func.count()).select_from(subscriptions).where(
        subscriptions.c.client_id == partner.client_id, subscriptions.c.state == "active")).scalar_one()
    if active >= MAX_SUBSCRIPTIONS:
        raise InvalidInput(f"A partner has at most {MAX_SUBSCRIPTIONS} active subscriptions.", field="subscription")
    subscription_id = conn.execute(subscriptions.insert().values(
        client_id=partner.client_id, kinds=chosen, scope=scope, area_code=area_code if scope == "area" else None,
        webhook_url=webhook_url, secret_sealed=vault.seal(secret.encode(), SECRET_PURPOSE) if secret else None,
        state="active", created_at=utcnow()).returning(subscriptions.c.subscription_id)).scalar_one()
    view = subscription_view(_subscription(conn, partner, subscription_id))
    if secret is not None:
        view["webhook_secret"] = secret
    return view


def _subscription(conn: sa.Connection, partner, subscription_id: int):
    row = conn.execute(sa.select(subscriptions).where(subscriptions.c.subscription_id == subscription_id,
                                                      subscriptions.c.client_id == partner.client_id)).first()
    if row is None:
        raise NotFound("The partner has no subscription with this id.", field="subscription_id")
    return row


def get_subscription(conn: sa.Connection, partner, subscription_id: int) -> dict:
    return subscription_view(_subscription(conn, partner, subscription_id))


def list_subscriptions(conn: sa.Connection, partner) -> list[dict]:
    rows = conn.execute(sa.select(subscriptions).where(subscriptions.c.client_id == partner.client_id)
                        .order_by(subscriptions.c.subscription_id)).all()
    return [subscription_view(r) for r in rows]


def disable_subscription(conn: sa.Connection, partner, subscription_id: int) -> dict:
    """Stop a subscription: nothing more is routed to it, its pending deliveries are dropped."""
    _subscription(conn, partner, subscription_id)
    now = utcnow()
    conn.execute(subscriptions.update().where(subscriptions.c.subscription_id == subscription_id)
                 .values(state="disabled", disabled_at=now))
    conn.execute(change_deliveries.update().where(change_deliveries.c.subscription_id == subscription_id,
                                                  change_deliveries.c.status == "pending")
                 .values(status="dead", last_error="subscription disabled"))
    return subscription_view(_subscription(conn, partner, subscription_id))


# -------------------------------------------------------------------------------- dead letters


def dead_letter_view(row) -> dict:
    return {"seq": row.seq, "type": row.topic, "subscription_id": row.subscription_id, "attempts": row.attempts,
            "last_error": row.last_error, "occurred_at": row.occurred_at.isoformat(),
            "client_id": row.client_id}


def dead_letters(conn: sa.Connection, *, client_id: str | None = None, subscription_id: int | None = None,
                 limit: int = 1000) -> list[dict]:
    q = sa.select(change_deliveries).where(change_deliveries.c.status == "dead")
    if client_id is not None:
        q = q.where(change_deliveries.c.client_id == client_id)
    if subscription_id is not None:
        q = q.where(change_deliveries.c.subscription_id == subscription_id)
    rows = conn.execute(q.order_by(change_deliveries.c.seq, change_deliveries.c.delivery_id).limit(limit)).all()
    return [dead_letter_view(r) for r in rows]


def partner_dead_letters(conn: sa.Connection, partner, subscription_id: int) -> list[dict]:
    _subscription(conn, partner, subscription_id)
    return dead_letters(conn, subscription_id=subscription_id)


def requeue(conn: sa.Connection, subscription_id: int, now: dt.datetime | None = None) -> int:
    """Put a subscription's dead letters back in the queue (fresh attempts, due now); the count."""
    row = conn.execute(sa.select(subscriptions).where(subscriptions.c.subscription_id == subscription_id)).first()
    if row is None:
        raise NotFound("No subscription with this id.", field="subscription_id")
    if row.state != "active" or row.webhook_url is None:
        raise InvalidInput("Only an active subscription with a webhook can be retried.", field="subscription_id")
    return conn.execute(change_deliveries.update().where(change_deliveries.c.subscription_id == subscription_id,
                                                         change_deliveries.c.status == "dead")
                        .values(status="pending", attempts=0, next_attempt_at=now or utcnow(),
                                last_error=None)).rowcount


def partner_requeue(conn: sa.Connection, partner, subscription_id: int) -> dict:
    _subscription(conn, partner, subscription_id)
    return {"requeued": requeue(conn, subscription_id)}


# ------------------------------------------------------------------------------------ the feed


def event_body(topic: str, occurred_at: dt.datetime, data: dict) -> dict:
    """The Standard Webhooks payload structure: type, timestamp, data."""
    return {"type": topic, "timestamp": occurred_at.isoformat().replace("+00:00", "Z"), "data": data}


def feed(conn: sa.Connection, partner, *, after: int = 0, limit: int = 100) -> dict:
    """The partner's routed events with ``seq`` > ``after`` in seq order (each once, whatever the
    number of its subscriptions that matched), and the ``next_after`` to ask with next."""
    if not isinstance(after, int) or after < 0:
        raise InvalidInput("after is a sequence number (0 or more).", field="after")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_FEED_PAGE:
        raise InvalidInput(f"limit is 1 to {MAX_FEED_PAGE}.", field="limit")
    first = (sa.select(sa.func.min(change_deliveries.c.delivery_id))
             .where(change_deliveries.c.client_id == partner.client_id, change_deliveries.c.seq > after)
             .group_by(change_deliveries.c.seq).order_by(change_deliveries.c.seq).limit(limit).subquery())
    rows = conn.execute(sa.select(change_deliveries.c.seq, change_deliveries.c.topic, change_deliveries.c.occurred_at,
                                  change_deliveries.c.data)
                        .where(change_deliveries.c.delivery_id.in_(sa.select(first)))
                        .order_by(change_deliveries.c.seq)).all()
    events = [event_body(r.topic, r.occurred_at, dict(r.data)) for r in rows]
    return {"events": events, "next_after": rows[-1].seq if rows else after}
