"""Helpers for the e-ID tests: FAMILY with phones, subscriber data and cards; accounts enrolled at the
counter; a face matcher for tests; device keys and their proofs."""

from __future__ import annotations

import datetime as dt
import io
import re

import sqlalchemy as sa
from joserfc import jws
from joserfc.jwk import ECKey
from PIL import Image

from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.cards import chip, lifecycle
from dinhdanh.cards.tables import cards
from dinhdanh.eid import auth, faces, registration
from dinhdanh.ids.lds import dg2
from dinhdanh.registry import commands as cmd
from dinhdanh.registry import events as ev
from dinhdanh.registry.tables import persons
from dinhdanh.store.outbox import outbox
from tests.chips import NATIONAL

PASSCODE = "246810"
PHONES = {"001085000001": "0912345001", "001187000002": "0912345002", "001212000003": "0912345003",
          "079090000005": "0987654005", "079193000006": "0987654006"}


def issue(engine, vault, pid: str, kind: str | None = None) -> dict:
    with engine.begin() as conn:
        return lifecycle.issue_card(conn, vault, NATIONAL, pid, kind)


def enroll(engine, vault, pid: str, level: int = 1, passcode: str = PASSCODE, **kw) -> dict:
    with engine.begin() as conn:
        return auth.enroll(conn, vault, pid, level=level, passcode=passcode, actor="officer:test", **kw)


def record(engine, kind: str, **fields):
    with UnitOfWork(engine).begin() as conn:  # as the app writes: BEGIN IMMEDIATE
        return ev.record_event(conn, ev.Actor("officer:test"), kind, cmd.EVENT_KINDS[kind].model_validate(fields))


def newborn(engine, years: int = 3) -> str:
    """A child of An and Bình born ``years`` ago; returns the PID."""
    born = dt.date.today().replace(day=1) - dt.timedelta(days=365 * years)
    return record(engine, "birth", full_name="Nguyễn Bảo Ngọc", sex="female", date_of_birth=born.isoformat(),
                  commune_code="00070", father_pid="001085000001", mother_pid="001187000002").pid


def device_key() -> tuple[ECKey, dict]:
    key = ECKey.generate_key("P-256")
    return key, key.as_dict(private=False)


def prove(key: ECKey, challenge: str, kid: str | None = None) -> str:
    header = {"alg": "ES256"} | ({"kid": kid} if kid else {})
    return jws.serialize_compact(header, challenge.encode(), key)


class FakeMatcher:
    """A face matcher for tests: the card's own photo matches, anything else does not."""

    name = "fake"

    def compare(self, probe: bytes, reference: bytes) -> faces.FaceResult:
        same = probe == reference
        return faces.FaceResult("match" if same else "no_match", 0.1 if same else 0.9)


def jpeg(colour=(200, 150, 120)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 80), colour).save(out, "JPEG")
    return out.getvalue()


def with_phones(engine) -> None:
    """Give FAMILY their phone numbers, and the telcos' subscriber data from them."""
    with engine.begin() as conn:
        for pid, phone in PHONES.items():
            conn.execute(persons.update().where(persons.c.pid == pid).values(phone=phone))
        registration.seed_subscriptions_from_register(conn)


def card_photo(engine, vault, pid: str) -> bytes:
    with engine.connect() as conn:
        person_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()
        card = conn.execute(sa.select(cards).where(cards.c.person_id == person_id, cards.c.status == "issued")).one()
        return dg2.decode(chip.chip_files(card, vault)["DG2"]).image


def last_code(engine, channel: str = "notify.sms") -> str:
    """The activation code of the newest notification (what the phone receives; the outbox holds it
    sealed, opened here with the database's vault as the deliverer would)."""
    from dinhdanh.notify.service import opened
    from dinhdanh.store.vault import of_bind

    with engine.connect() as conn:
        payload = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic == channel)
                               .order_by(outbox.c.seq.desc())).scalars().first()
    return re.search(r"\b([0-9]{6})\b", opened(of_bind(engine), payload)["text"]).group(1)


def counts(engine, *tables) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables)
