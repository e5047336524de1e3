"""Chip verification for banks and other relying parties: the chip, then the register.

``dinhdanh.ids.lds.passive`` says whether the chip is genuine and unaltered (any country's);
this module adds what only the register knows: whether this very card is current, revoked or
expired, whether its holder is alive, and whether the chip's data agree with the record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping

import sqlalchemy as sa

from dinhdanh.cards import pki
from dinhdanh.cards.validity import is_expired
from dinhdanh.cards.tables import cards, pki_crls, pki_keys, trust_anchors
from dinhdanh.ids.exceptions import ValidationError
from dinhdanh.ids.lds import dg13, passive
from dinhdanh.ids.lds.certs import TrustStore
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.registry.records import find_person
from dinhdanh.registry.errors import NotFound
from dinhdanh.registry.tables import persons

__all__ = ["verify_card", "chip_files", "trust_store_for"]

_stores: dict[tuple, TrustStore] = {}


_VERSION = sa.select(
    sa.select(sa.func.max(pki_keys.c.key_id)).scalar_subquery(),
    # two registers may share a URL (PostgreSQL schemas): the newest key's identifier tells them apart
    sa.select(pki_keys.c.key_identifier).order_by(pki_keys.c.key_id.desc()).limit(1).scalar_subquery(),
    sa.select(sa.func.count(pki_keys.c.revoked_at)).scalar_subquery(),
    sa.select(sa.func.max(pki_crls.c.crl_id)).scalar_subquery(),
    sa.select(sa.func.max(trust_anchors.c.anchor_id)).scalar_subquery(),
)


def trust_store_for(conn: sa.Connection) -> TrustStore:
    """The trust store, rebuilt only when a key, revocation, CRL or trust anchor was added since."""
    version = (str(conn.engine.url), *conn.execute(_VERSION).one())
    store = _stores.get(version)
    if store is None:
        store = pki.trust_store(conn)
        if len(_stores) > 16:
            _stores.clear()
        _stores[version] = store
    return store


def chip_files(named: Mapping[str, bytes]) -> dict[int, bytes]:
    """{"DG1": bytes, "EF.SOD": bytes, ...} -> {1: ..., -1: ...}; InvalidInput naming a bad name."""
    out: dict[int, bytes] = {}
    for name, raw in named.items():
        try:
            out[passive.dg_number(name)] = raw
        except ValueError as exc:
            raise InvalidInput(str(exc), field=name) from None
    if -1 not in out:
        raise InvalidInput("EF.SOD is required: passive authentication checks every file against it.",
                           field="EF.SOD")
    return out


def verify_card(conn: sa.Connection, files: Mapping[int, bytes], *, challenge: bytes | None = None,
                response: bytes | None = None, at: dt.datetime | None = None) -> tuple[dict, int | None]:
    """(the report, the person_id the register matched, for the access log)."""
    try:
        report = passive.verify_chip(files, trust_store_for(conn), at=at, challenge=challenge,
                                     response=response)
    except ValidationError as exc:
        raise InvalidInput(f"The chip data are not readable: {exc}", field="EF.SOD") from None
    authentic = report.signature_valid and report.chain["status"] == "trusted"
    register, person_id = _register_check(conn, files, authentic)
    out = report.as_dict()
    out["register"] = register
    if register["card"] in ("revoked", "expired"):
        report.fail("register", f"the card is {register['card']}"
                    + (f" ({register['reason']})" if register.get("reason") else ""))
    if register["person"] in ("dead", "missing"):
        report.fail("register", f"the holder is recorded as {register['person']}")
    if register["data"] == "differs":
        report.fail("register", "the chip's data differ from the register: "
                    + ", ".join(d["field"] for d in register["differences"]))
    out["failures"] = report.failures
    out["verdict"] = report.verdict
    return out, person_id


_HOLDER_AND_CARD = (sa.select(persons, cards.c.card_number, cards.c.status.label("card_status"),
                              cards.c.expiry_date.label("card_expiry"), cards.c.revocation_reason)
                    .join(cards, cards.c.person_id == persons.c.person_id))


def _register_check(conn, files, authentic: bool) -> tuple[dict, int | None]:
    """The register's view of the card and its holder.

    Only a chip whose SOD is authentic (signature valid, chain trusted) is looked up: a forged one
    learns nothing of the register. The comparison names the fields that differ and
    what the chip says, never what the register holds.
    """
    if not authentic:
        return {"card": "not_checked", "card_number": None,
                "reason": "the SOD is not signed by a trusted Document Signer", "person": "not_checked",
                "data": "not_checked", "differences": []}, None
    digest = hashlib.sha256(files[-1]).hexdigest()
    card = conn.execute(_HOLDER_AND_CARD.where(cards.c.sod_digest == digest)).first()
    personal = None
    if 13 in files:
        try:
            personal = passive.personal_data(files[13])
        except ValidationError:
            personal = None
    if card is not None:
        row = card
        status = card.card_status
        if status == "issued" and is_expired(card.card_expiry, dt.datetime.now(dt.UTC).date()):
            status = "expired"
        out = {"card": "current" if status == "issued" else status, "card_number": card.card_number,
               "reason": card.revocation_reason}
    else:
        pid = personal.pid if personal and personal.pid else None
        row = None
        if pid:
            try:
                row = find_person(conn, pid)
            except NotFound:
                row = None
        out = {"card": "unknown", "card_number": None, "reason": "no card issued here has this EF.SOD"}
    if row is None:
        out.update(person="unknown", data="not_checked", differences=[])
        return out, None
    out["person"] = row.status
    if personal is None:
        out.update(data="not_checked", differences=[])
    else:
        differences = _differences(row, personal)
        out.update(data="differs" if differences else "agrees", differences=differences)
    return out, row.person_id


def _differences(row, personal: dg13.VnPersonalData) -> list[dict]:
    from dinhdanh.ids import names

    found = []
    if personal.pid and personal.pid != row.pid:
        found.append({"field": "pid", "chip": personal.pid})
    if personal.full_name and names.match_key(personal.full_name) != names.match_key(row.full_name):
        found.append({"field": "full_name", "chip": personal.full_name})
    if personal.date_of_birth and personal.date_of_birth != row.date_of_birth.strftime("%d/%m/%Y"):
        found.append({"field": "date_of_birth", "chip": personal.date_of_birth})
    if personal.sex:
        sex = {"nam": "male", "nữ": "female"}.get(names.normalize(personal.sex).lower())
        if sex and sex != row.sex:
            found.append({"field": "sex", "chip": personal.sex})
    return found
