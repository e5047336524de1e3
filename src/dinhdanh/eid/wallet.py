"""The document wallet, the electronic identity card and the in-person identity QR.

Documents (driving licence, vehicle registration, health and social insurance) are integrated on
the holder's request after their issuing registry confirms them, through a ``WalletSource``
connector (one per registry; the demo's reads ``source_documents``, which
``seed_source_documents`` fills). A level-2 account also shows the electronic identity card, built
from the current chip card.

The identity QR: the app asks for a token valid 60 seconds; an officer's app scans it and sees the
holder's identity at the account's level, once. Only the token's SHA-256 is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from dinhdanh.cards import lifecycle
from dinhdanh.cards.validity import age_on, birthday
from dinhdanh.eid import accounts
from dinhdanh.eid.tables import WALLET_KINDS, identity_qr_tokens, source_documents, wallet_documents
from dinhdanh.ids import names
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow

QR_LIFETIME = dt.timedelta(seconds=60)
KIND_NAMES = {"driving_licence": "Giấy phép lái xe", "vehicle_registration": "Giấy đăng ký xe",
              "health_insurance": "Thẻ bảo hiểm y tế", "social_insurance": "Sổ bảo hiểm xã hội"}


@dataclass(frozen=True, slots=True)
class SourceDocument:
    kind: str
    number: str
    holder_pid: str
    holder_name: str
    issuer: str
    issued_on: dt.date
    valid_until: dt.date | None
    status: str  # valid / revoked
    data: dict


class WalletSource(Protocol):
    """A connector to an issuing registry: what it holds under a document's number."""

    def lookup(self, conn: sa.Connection, kind: str, number: str) -> SourceDocument | None: ...


class SeededSource:
    """The demo's registries: the ``source_documents`` table."""

    def lookup(self, conn: sa.Connection, kind: str, number: str) -> SourceDocument | None:
        row = conn.execute(sa.select(source_documents).where(source_documents.c.kind == kind,
                                                             source_documents.c.number == number)).first()
        if row is None:
            return None
        return SourceDocument(row.kind, row.number, row.holder_pid, row.holder_name, row.issuer, row.issued_on,
                              row.valid_until, row.status, row.data)


SOURCES: dict[str, WalletSource] = {kind: SeededSource() for kind in WALLET_KINDS}


def _document_view(row) -> dict:
    return {"kind": row.kind, "title": KIND_NAMES[row.kind], "number": row.number, "issuer": row.issuer,
            "valid_until": row.valid_until.isoformat() if row.valid_until else None, "data": row.data,
            "verified_at": row.verified_at.isoformat()}


def _usable_account(conn, account_id: int):
    account = accounts.get_account(conn, account_id)
    if account.state != "active":
        raise RuleViolation("The e-ID account is not active.", code="account_not_active", field="account_id")
    return account


def add_document(conn: sa.Connection, account_id: int, kind: str, number: str, *,
                 source: WalletSource | None = None, now: dt.datetime | None = None) -> dict:
    """Integrate a document after its registry confirms it is valid and the holder's."""
    if kind not in WALLET_KINDS:
        raise InvalidInput(f"Unknown document kind; one of {', '.join(WALLET_KINDS)}.", field="kind")
    if not isinstance(number, str) or not number.strip() or len(number) > 30:
        raise InvalidInput("The document number is 1 to 30 characters.", field="number")
    number = number.strip().upper()
    now = now or utcnow()
    account = _usable_account(conn, account_id)
    if account.kind != "citizen":
        raise RuleViolation("Only a citizen's account holds these documents.", code="not_a_citizen", field="kind")
    person = accounts.holder(conn, account)
    found = (source or SOURCES[kind]).lookup(conn, kind, number)
    if found is None:
        raise NotFound("The issuing registry has no such document.", code="document_not_found", field="number")
    if found.holder_pid != person.pid or names.match_key(found.holder_name) != names.match_key(person.full_name):
        raise RuleViolation("The document is not this person's.", code="document_not_holders", field="number")
    if found.status != "valid":
        raise RuleViolation("The issuing registry reports the document as revoked.", code="document_revoked",
                            field="number")
    today = accounts.vn_today(now)
    if found.valid_until is not None and found.valid_until < today:
        raise RuleViolation("The document has expired.", code="document_expired", field="number")
    existing = conn.execute(sa.select(wallet_documents).where(
        wallet_documents.c.account_id == account_id, wallet_documents.c.kind == kind,
        wallet_documents.c.number == number)).first()
    values = dict(issuer=found.issuer, valid_until=found.valid_until, data=found.data, verified_at=now,
                  removed_at=None)
    if existing is not None:
        if existing.removed_at is None:
            raise Conflict("The document is already in the wallet.", code="already_in_wallet", field="number")
        conn.execute(wallet_documents.update().where(wallet_documents.c.wallet_id == existing.wallet_id)
                     .values(**values))
    else:
        conn.execute(wallet_documents.insert().values(account_id=account_id, kind=kind, number=number, **values))
    accounts.log_event(conn, account_id, "document_added", source="owner", actor="owner",
                       detail={"kind": kind}, now=now)
    row = conn.execute(sa.select(wallet_documents).where(
        wallet_documents.c.account_id == account_id, wallet_documents.c.kind == kind,
        wallet_documents.c.number == number)).one()
    return _document_view(row)


def identity_card(conn: sa.Connection, account) -> dict | None:
    """The electronic identity card of a level-2 citizen: the current chip card's printed data."""
    if account.kind != "citizen" or account.level != 2:
        return None
    card = lifecycle.current_card(conn, account.person_id)
    if card is None:
        return None
    printed = card.printed or {}
    return {"card_number": card.card_number, "status": lifecycle.effective_status(card, accounts.vn_today()),
            "issue_date": card.issue_date.isoformat(),
            "expiry_date": card.expiry_date.isoformat() if card.expiry_date else None,
            "full_name": printed.get("full_name"), "date_of_birth": printed.get("date_of_birth"),
            "sex": printed.get("sex"), "nationality": printed.get("nationality"),
            "place_of_origin": printed.get("hometown") or printed.get("place_of_origin"),  # 2021 model
            "place_of_birth_registration": printed.get("birth_registration_place"),  # 2023 model
            "place_of_residence": printed.get("residence") or printed.get("place_of_residence"),
            "card_model": printed.get("model", "2021"), "qr": card.qr}


def wallet(conn: sa.Connection, account_id: int) -> dict:
    account = accounts.get_account(conn, account_id)
    rows = conn.execute(sa.select(wallet_documents).where(wallet_documents.c.account_id == account_id,
                                                          wallet_documents.c.removed_at.is_(None))
                        .order_by(wallet_documents.c.wallet_id)).all()
    return {"identity_card": identity_card(conn, account), "documents": [_document_view(r) for r in rows]}


# ------------------------------------------------------------------------------- the demo's source


def seed_source_documents(conn: sa.Connection, *, limit: int | None = None, seed: int = 6,
                          today: dt.date | None = None) -> int:
    """Give living people of the register plausible documents in the issuing registries (the demo's):
    health insurance for everyone, social insurance and (two in three) a driving licence for adults,
    a motorbike registration for one adult in two. Deterministic per PID; returns rows written."""
    today = today or accounts.vn_today()
    query = (sa.select(persons.c.pid, persons.c.full_name, persons.c.date_of_birth, persons.c.province_code)
             .where(persons.c.status == "alive").order_by(persons.c.person_id))
    if limit is not None:
        query = query.limit(limit)
    have = set(conn.execute(sa.select(source_documents.c.kind, source_documents.c.holder_pid)).all())
    rows = []
    for pid, name, born, province in conn.execute(query):
        rng = random.Random(f"{seed}:{pid}")
        age = age_on(born, today)
        province = province or "01"
        docs = [("health_insurance", f"GD{province}{pid[-10:]}", "Bảo hiểm xã hội Việt Nam",
                 dt.date(today.year, 12, 31), {"hospital": f"Bệnh viện tỉnh {province}"})]
        if age >= 18:
            docs.append(("social_insurance", pid[-10:], "Bảo hiểm xã hội Việt Nam", None, {}))
            if rng.random() < 2 / 3:
                docs.append(("driving_licence", f"{province}{rng.randrange(10**10):010d}",
                             f"Sở Xây dựng tỉnh {province}", today.replace(year=today.year + rng.randrange(1, 10)),
                             {"class": rng.choice(("A1", "A1", "B", "B2"))}))
            if rng.random() < 1 / 2:
                docs.append(("vehicle_registration", f"{province}{rng.choice('ABCDEFGH')}{rng.randrange(10**5):05d}",
                             f"Công an tỉnh {province}", None,
                             {"vehicle": "xe mô tô", "plate": f"{province}-{rng.randrange(10**5):05d}"}))
        for kind, number, issuer, valid_until, data in docs:
            if (kind, pid) in have:
                continue
            rows.append({"kind": kind, "number": number, "holder_pid": pid, "holder_name": name, "issuer": issuer,
                         "issued_on": min(today, birthday(born, born.year + 18) if age >= 18 else today),
                         "valid_until": valid_until, "status": "valid", "data": data})
    if rows:
        conn.execute(source_documents.insert(), rows)
    return len(rows)


def source_documents_of(conn: sa.Connection, pids: Iterable[str]) -> list[dict]:
    """The seeded documents of these people (for the demo's printout and tests)."""
    rows = conn.execute(sa.select(source_documents).where(source_documents.c.holder_pid.in_(list(pids)))
                        .order_by(source_documents.c.source_id)).all()
    return [{"kind": r.kind, "number": r.number, "holder_pid": r.holder_pid} for r in rows]


# ------------------------------------------------------------------------------ identity QR


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_identity_qr(conn: sa.Connection, account_id: int, *, level: int | None = None,
                      now: dt.datetime | None = None) -> dict:
    """A one-time token valid 60 s for the app's QR; ``level`` = the level the app's login proved."""
    now = now or utcnow()
    account = _usable_account(conn, account_id)
    token = "qr_" + secrets.token_urlsafe(24)
    shown = min(level or account.level or 1, account.level or 1)
    conn.execute(identity_qr_tokens.insert().values(token_hash=_token_hash(token), account_id=account_id,
                                                    level=shown, created_at=now, expires_at=now + QR_LIFETIME))
    return {"token": token, "expires_at": (now + QR_LIFETIME).isoformat(), "expires_in": 60}


def verify_identity_qr(conn: sa.Connection, token: str, *, actor: str, now: dt.datetime | None = None) -> tuple[dict, int | None]:
    """(the holder's identity at the token's level, the person_id for the access log); once, within 60 s."""
    now = now or utcnow()
    if not isinstance(token, str) or not token or len(token) > 100:
        raise InvalidInput("The QR token is missing or malformed.", code="qr_invalid", field="token")
    digest = _token_hash(token)
    row = conn.execute(sa.select(identity_qr_tokens).where(identity_qr_tokens.c.token_hash == digest)).first()
    if row is None:
        raise RuleViolation("The QR code is not valid.", code="qr_invalid", field="token")
    claimed = conn.execute(identity_qr_tokens.update().where(
        identity_qr_tokens.c.token_id == row.token_id, identity_qr_tokens.c.used_at.is_(None),
        identity_qr_tokens.c.expires_at > now).values(used_at=now, used_by=actor))
    if claimed.rowcount != 1:
        if row.used_at is not None:
            raise RuleViolation("The QR code was already used.", code="qr_used", field="token")
        raise RuleViolation("The QR code has expired (60 seconds).", code="qr_expired", field="token")
    account = accounts.get_account(conn, row.account_id)
    if account.state != "active":
        raise RuleViolation("The holder's e-ID account is not active.", code="account_not_active", field="token")
    holder = accounts.holder(conn, account)
    if account.kind == "citizen":
        out = {"kind": "citizen", "level": row.level, "pid": holder.pid, "full_name": holder.full_name,
               "date_of_birth": holder.date_of_birth.isoformat(), "sex": holder.sex}
        if row.level == 2:
            out["identity_card"] = identity_card(conn, account)
        return out, holder.person_id
    if account.kind == "foreigner":
        return {"kind": "foreigner", "level": row.level, "foreigner_number": holder.number,
                "full_name": holder.full_name, "date_of_birth": holder.date_of_birth.isoformat(), "sex": holder.sex,
                "nationality": holder.nationality}, None
    return {"kind": "organisation", "level": None, "code": holder.code, "name": holder.name}, None

