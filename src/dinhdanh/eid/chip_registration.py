"""Level-1 registration with the chip card, as VNeID's app does it: the app reads the card over NFC
and sends what it read (EF.SOD and the data groups) with the chip's Active Authentication signature
over a challenge of ours, and a photo of the holder's face.

``new_challenge`` gives 8 random bytes (ICAO 9303-11 s.6.1, RND.IFD) under a random id, for 120
seconds; the bytes are sealed by the vault and the id is kept as its SHA-256. ``register_by_chip``
first spends the challenge with one conditional UPDATE (of concurrent requests naming it, one gets
it; the rest, and any later one, get nothing), so it is spent whatever follows. Then
``cards.verification.verify_card``, the bank's verifier: passive authentication against the national
trust store (the SOD's signature, the Document Signer's chain to our CSCA and the CRL, every data
group's hash), Active Authentication with the DG15 key over the challenge, DG1 against DG13, and the
register (this very card, found by its SOD, issued, not revoked, not expired; its holder alive; DG13
agreeing with the record). Any failure there is one answer, ``chip_not_verified``, that does not say
which check failed. A proven chip is its holder's card in hand, so the holder's rules (age, an
account already held, a mobile number not theirs) are then named; with a face matcher installed the
face is compared with the DG2 portrait first, so a card held by someone else learns nothing of them.
Without a matcher an officer compares the faces (``pending_review``): the card's photo the reviewer
sees (``registration_detail``) is this DG2, byte for byte, since the card is found by its SOD.

Each check of a person the chip names writes an access-log entry (as ``registration.register``
does); a chip whose SOD is not ours reads nothing of the register and writes none.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping

import sqlalchemy as sa

from dinhdanh.cards import verification
from dinhdanh.cards.lifecycle import current_card, effective_status
from dinhdanh.eid import accounts, faces, registration
from dinhdanh.eid.registration import RegistrationRefused, chip_refused
from dinhdanh.eid.tables import eid_registration_challenges as challenges
from dinhdanh.ids.exceptions import ValidationError
from dinhdanh.ids.lds import dg2
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault, VaultError

CHALLENGE_LIFETIME = dt.timedelta(seconds=120)
CHALLENGE_BYTES = 8  # RND.IFD
REQUIRED = {1: "dg1", 2: "dg2", 13: "dg13", 15: "dg15"}  # the SOD (-1) besides; DG14 when the chip has one
_PURPOSE = "eid-aa-challenge"
_DEFAULT = object()


def _id_hash(challenge_id: str) -> str:
    return hashlib.sha256(challenge_id.encode()).hexdigest()


def new_challenge(conn: sa.Connection, vault: Vault, *, now: dt.datetime | None = None) -> dict:
    """A challenge for the chip to sign: ``challenge`` is base64url (no padding) of the 8 bytes."""
    now = now or utcnow()
    challenge_id, challenge = secrets.token_urlsafe(24), secrets.token_bytes(CHALLENGE_BYTES)
    conn.execute(challenges.delete().where(challenges.c.expires_at < now - dt.timedelta(hours=1)))
    id_hash = _id_hash(challenge_id)
    conn.execute(challenges.insert().values(challenge_id_hash=id_hash,
                                            challenge=vault.seal(challenge, f"{_PURPOSE}:{id_hash}"),
                                            created_at=now, expires_at=now + CHALLENGE_LIFETIME))
    return {"challenge_id": challenge_id, "challenge": base64.urlsafe_b64encode(challenge).rstrip(b"=").decode(),
            "expires_in": int(CHALLENGE_LIFETIME.total_seconds())}


def spend_challenge(conn: sa.Connection, vault: Vault, challenge_id: str, now: dt.datetime) -> bytes | None:
    """The challenge's bytes, spent now; None when it is unknown, expired or already spent."""
    id_hash = _id_hash(challenge_id)
    sealed = conn.execute(challenges.update().where(
        challenges.c.challenge_id_hash == id_hash, challenges.c.used_at.is_(None), challenges.c.expires_at > now,
    ).values(used_at=now).returning(challenges.c.challenge)).scalar_one_or_none()
    if sealed is None:
        return None
    try:
        return vault.open(sealed, f"{_PURPOSE}:{id_hash}")
    except VaultError:  # sealed under another master key: as good as unknown
        return None


def _proof_failures(conn, report: dict, sod: bytes, person, *, fresh: bool, today: dt.date) -> list[tuple]:
    """Every reason the chip does not prove its holder's current card (empty when it does)."""
    reasons: list[tuple] = [] if fresh else [("challenge", "unknown, expired or spent")]
    reasons += [(f["check"], f["reason"]) for f in report["failures"]]
    if report["chain"]["status"] != "trusted":
        reasons.append(("chain", report["chain"]["status"]))
    if report["active_authentication"]["status"] != "passed":
        reasons.append(("active_authentication", report["active_authentication"]["status"]))
    reasons += [("data_groups", f"DG{n} {report['data_groups'].get(f'DG{n}', 'not read')}")
                for n in REQUIRED if report["data_groups"].get(f"DG{n}") != "match"]
    if report["consistency"]["status"] != "consistent":
        reasons.append(("consistency", report["consistency"]["status"]))
    held = report["register"]
    for check, wanted in (("card", "current"), ("person", "alive"), ("data", "agrees")):
        if held[check] != wanted:
            reasons.append((f"register_{check}", held[check]))
    if person is not None:  # this very card is the person's current one (issued, unexpired, newest)
        card = current_card(conn, person.person_id)
        if card is None or card.sod_digest != hashlib.sha256(sod).hexdigest() \
                or effective_status(card, today) != "issued":
            reasons.append(("register_card", "not the person's current card"))
    return reasons


def _portrait(raw_dg2: bytes) -> bytes | None:
    try:
        return dg2.decode(raw_dg2).image
    except ValidationError:
        return None


def register_by_chip(conn: sa.Connection, vault: Vault, *, challenge_id: str, files: Mapping[int, bytes],
                     aa_signature: bytes, face_image: bytes, msisdn: str, email: str | None, matcher=_DEFAULT,
                     now: dt.datetime | None = None) -> dict:
    """A level-1 registration proven by the chip card (see the module's doc). ``files``: {-1: EF.SOD,
    1: DG1, 2: DG2, 13: DG13, 15: DG15, and 14: DG14 when read}.

    Returns the registration as ``registration.register`` does; raises ``InvalidInput`` naming a
    missing or unreadable file or image, ``chip_refused`` for a failed proof or face, and a named
    ``RegistrationRefused`` for the holder's rules. The challenge is spent and the access-log entry
    written either way: commit even when it raises.
    """
    now = now or utcnow()
    today = accounts.vn_today(now)
    matcher = faces.default_matcher() if matcher is _DEFAULT else matcher
    challenge = spend_challenge(conn, vault, challenge_id, now)
    for number, name in {-1: "sod", **REQUIRED}.items():
        if not files.get(number):
            raise InvalidInput(f"{name} is required: the chip's file as read.", field=name)
    if not faces.is_jpeg(face_image):
        raise InvalidInput("The face image must be a JPEG (at most 2 MB).", code="face_unreadable",
                           field="face_image")
    try:
        # no challenge (b""): Active Authentication fails, and every other check still runs
        report, person_id = verification.verify_card(conn, files, challenge=challenge or b"",
                                                     response=aa_signature, at=now)
    except InvalidInput:
        raise InvalidInput("The SOD is not an EF.SOD (a CMS SignedData).", field="sod") from None
    person = (conn.execute(sa.select(persons).where(persons.c.person_id == person_id)).one()
              if person_id is not None else None)
    try:
        reasons = _proof_failures(conn, report, files[-1], person, fresh=challenge is not None, today=today)
        portrait = _portrait(files[2])
        if portrait is None:
            reasons.append(("data_groups", "DG2 holds no portrait"))
        if person is None and not reasons:
            reasons.append(("register_person", "unknown"))
        if reasons:
            raise chip_refused(reasons)
        face = registration.face_check(matcher, face_image, portrait)
        if face["outcome"] in ("no_match", "no_face"):
            raise chip_refused([("face", face["outcome"])])
        problems = registration.holder_problems(conn, person, msisdn=msisdn, guardian=None, today=today)
        if problems:
            raise RegistrationRefused(problems, status=409)
        checks = {"chip": "verified", "active_authentication": "passed", "card": "current",
                  "register": "agrees", "alive": True, "msisdn": "owned", "face": face}
        out = registration.record_registration(conn, vault, channel="chip", person_id=person.person_id,
                                               msisdn=msisdn, email=email, checks=checks, face_image=face_image,
                                               approve=face["outcome"] == "match", now=now)
    except RegistrationRefused:
        if person is not None:
            registration.audit_check(conn, person.person_id, "mismatch", purpose="identity_check")
        raise
    registration.audit_check(conn, person.person_id, "match", purpose="identity_check")
    return out
