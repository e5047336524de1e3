"""First cards for many people at once: the personalisation run of a card factory.

The same steps as ``lifecycle.issue_card`` (application, approval, production, hand-over, each
in the register's history, each SOD signature in the key-use log, a ``card.issued`` event in the
outbox) done set-wise: a few multi-row statements per batch instead of thirty statements a card.
People who already had a card, have an application open, are not alive or are outside the
officer's area are left out and listed with the reason; the single-card path handles those.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

import sqlalchemy as sa

from dinhdanh.cards import pki, production
from dinhdanh.cards.lifecycle import OPEN
from dinhdanh.cards.tables import card_applications, cards, pki_key_uses
from dinhdanh.registry.events import Actor
from dinhdanh.registry.tables import changes, events, persons
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.outbox import outbox
from dinhdanh.store.vault import Vault

__all__ = ["issue_first_cards"]

CHUNK = 500
STEPS = ("applied", "approved", "produced", "issued")


def _persons(conn, pids: Sequence[str]) -> dict[str, sa.Row]:
    found: dict[str, sa.Row] = {}
    for i in range(0, len(pids), CHUNK):
        chunk = pids[i:i + CHUNK]
        # locked (PostgreSQL), in one order, as every step of a person's cards does first
        # (``lifecycle._locked_person``): the checks below then see what a step at once committed
        for row in conn.execute(sa.select(persons).where(persons.c.pid.in_(chunk))
                                .order_by(persons.c.person_id).with_for_update()):
            found[row.pid] = row
    return found


def _with_cards_or_open(conn, person_ids: list[int]) -> set[int]:
    taken: set[int] = set()
    for i in range(0, len(person_ids), CHUNK):
        chunk = person_ids[i:i + CHUNK]
        taken.update(conn.execute(sa.select(cards.c.person_id).where(cards.c.person_id.in_(chunk))).scalars())
        taken.update(conn.execute(sa.select(card_applications.c.person_id).where(
            card_applications.c.person_id.in_(chunk), card_applications.c.status.in_(OPEN))).scalars())
    return taken


def _names(conn, person_ids: set[int]) -> dict[int, str]:
    ids = sorted(person_ids)
    out: dict[int, str] = {}
    for i in range(0, len(ids), CHUNK):
        out.update((r.person_id, r.full_name) for r in conn.execute(
            sa.select(persons.c.person_id, persons.c.full_name).where(persons.c.person_id.in_(ids[i:i + CHUNK]))))
    return out


def issue_first_cards(conn: sa.Connection, vault: Vault, actor: Actor, pids: Sequence[str], *,
                      now: dt.datetime | None = None) -> dict:
    """Issue a first card to each of ``pids``; returns ``{"issued": [...], "skipped": [...]}``."""
    now = now or utcnow()
    today = vietnam_date(now)
    pids = list(dict.fromkeys(pids))
    found = _persons(conn, pids)
    skipped = []
    candidates = []
    for pid in pids:
        row = found.get(pid)
        if row is None or not actor.area.covers(row):
            skipped.append({"pid": pid, "reason": "not in the register"})
        elif row.status != "alive":
            skipped.append({"pid": pid, "reason": f"recorded as {row.status}"})
        else:
            candidates.append(row)
    taken = _with_cards_or_open(conn, [r.person_id for r in candidates])
    rows = []
    for row in candidates:
        if row.person_id in taken:
            skipped.append({"pid": row.pid, "reason": "already had a card or has an application open"})
        else:
            rows.append(row)
    if not rows:
        return {"issued": [], "skipped": skipped}

    relatives = _names(conn, {i for r in rows for i in (r.father_id, r.mother_id, r.spouse_id) if i})
    signer = pki.document_signer(conn, vault, now)
    applications = conn.execute(
        card_applications.insert().returning(card_applications.c.application_id, sort_by_parameter_order=True),
        [{"person_id": r.person_id, "kind": "first", "status": "issued", "reason": None, "submitted_at": now,
          "submitted_by": actor.label, "decided_at": now, "decided_by": actor.label} for r in rows],
    ).scalars().all()

    card_rows, uses = [], []
    for row, application_id in zip(rows, applications):
        signed: list[bytes] = []

        def sign(data: bytes, _signed=signed) -> bytes:
            _signed.append(data)
            return signer.raw_sign(data)

        made = production.produce(
            row, issue_date=today, signed_at=now, father=relatives.get(row.father_id), mother=relatives.get(row.mother_id),
            spouse=relatives.get(row.spouse_id), sign=sign, signer_certificate=signer.certificate,
            signature_algorithm=signer.signature_algorithm, hash_algorithm=signer.hash_algorithm)
        files = made.files
        card_rows.append({
            "person_id": row.person_id, "application_id": application_id, "card_number": row.pid,
            "status": "issued", "issue_date": made.issue_date, "expiry_date": made.expiry_date,
            "printed": made.printed, "mrz": "\n".join(made.mrz), "qr": made.qr, "ef_com": files["EF.COM"],
            "dg1": files["DG1"], "dg2": vault.seal(files["DG2"], "dg2"), "dg13": files["DG13"],
            "dg14": files["DG14"], "dg15": files["DG15"], "sod": files["EF.SOD"], "sod_digest": made.sod_digest,
            "chip_key": vault.seal(made.chip_key, "chip-key"), "signer_id": signer.key_id, "produced_at": now,
            "issued_at": now,
        })
        uses += [{"key_id": signer.key_id, "used_at": now, "purpose": "sign_sod",
                  "reference": f"application:{application_id}", "digest": hashlib.sha256(d).hexdigest()}
                 for d in signed]
    card_ids = conn.execute(cards.insert().returning(cards.c.card_id, sort_by_parameter_order=True),
                            card_rows).scalars().all()
    conn.execute(card_applications.update().where(card_applications.c.application_id == sa.bindparam("app"))
                 .values(card_id=sa.bindparam("card")),
                 [{"app": a, "card": c} for a, c in zip(applications, card_ids)])
    conn.execute(pki_key_uses.insert(), uses)

    history, briefs = [], []
    for row, application_id, card_id, card in zip(rows, applications, card_ids, card_rows):
        brief = {"card_id": card_id, "card_number": row.pid, "status": "issued",
                 "issue_date": today.isoformat(),
                 "expiry_date": card["expiry_date"].isoformat() if card["expiry_date"] else None}
        briefs.append(brief)
        steps = [{"application_id": application_id, "kind": "first", "status": "submitted"},
                 {"application_id": application_id, "status": "approved"},
                 dict(brief, status="produced"), brief]
        for step, value in zip(STEPS, steps):
            history.append((row.person_id, step, value))
    event_ids = conn.execute(
        events.insert().returning(events.c.event_id, sort_by_parameter_order=True),
        [{"kind": f"card.{step}", "person_id": person_id, "recorded_at": now, "effective_date": today,
          "actor": actor.label, "reason": None, "legal_basis": "Luật Căn cước 2023", "payload": value}
         for person_id, step, value in history],
    ).scalars().all()
    conn.execute(changes.insert(), [
        {"event_id": event_id, "person_id": person_id, "field": "id_card", "old_value": None, "new_value": value}
        for event_id, (person_id, _, value) in zip(event_ids, history)])
    conn.execute(outbox.insert(), [
        {"topic": "card.issued", "person_id": row.person_id, "created_at": now,
         "payload": {"pid": row.pid, "card_id": brief["card_id"], "expiry_date": brief["expiry_date"]}}
        for row, brief in zip(rows, briefs)])
    return {"issued": briefs, "skipped": skipped}
