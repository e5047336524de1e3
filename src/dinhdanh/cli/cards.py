"""``dinhdanh mrz|qr|pki|card ...``: card formats (no database), the national PKI, cards."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry
from dinhdanh.ids.exceptions import ValidationError
from dinhdanh.registry.errors import RegistryError

mrz_app = typer.Typer(help="Machine-readable zones (ICAO 9303 TD1, TD2, TD3).", no_args_is_help=True)
qr_app = typer.Typer(help="The QR code of the chip ID card.", no_args_is_help=True)
pki_app = typer.Typer(help="The national eMRTD PKI: CSCA, Document Signers, CRLs, master list.",
                      no_args_is_help=True)
card_app = typer.Typer(help="Chip ID cards: issue, export, verify, revoke.", no_args_is_help=True)
trust_app = typer.Typer(help="Foreign CSCAs, master lists and CRLs that verification trusts.",
                        no_args_is_help=True)
pki_app.add_typer(trust_app, name="trust")


def _vault(engine):
    from dinhdanh.store.vault import VaultError, for_database

    try:
        return for_database(engine.url.render_as_string(hide_password=False))
    except VaultError as exc:
        fail(str(exc))


def _actor():
    from dinhdanh.registry.events import Actor

    return Actor(actor_label())


# ----------------------------------------------------------------------------------- formats


@mrz_app.command("check")
def mrz_check(lines: Annotated[list[str] | None, typer.Argument(
        help="The MRZ lines (2 or 3); read from stdin when none are given")] = None) -> None:
    """Check every check digit of an MRZ and print its fields (JSON); exit 1 when one fails."""
    from dinhdanh.ids import mrz

    text = "\n".join(lines) if lines else sys.stdin.read()
    try:
        result = mrz.parse(text)
    except ValidationError as exc:
        fail(str(exc))
    emit(result.as_dict())
    if not result.valid:
        raise typer.Exit(1)


@qr_app.command("parse")
def qr_parse(
    text: Annotated[str, typer.Argument(help="The QR text, or the path of a PNG/JPEG image of the QR")],
    layout: Annotated[str | None, typer.Option(help="cccd-2021 or cccd-2024 (default: the first that fits)")] = None,
) -> None:
    """Decode the card's QR payload (text or image) into its fields (JSON, dates ISO)."""
    from dinhdanh.ids import qr

    path = Path(text)
    try:
        if len(text) < 4096 and path.suffix.lower() in (".png", ".jpg", ".jpeg") :
            if not path.is_file():
                fail(f"no image file at {text}")
            text = qr.read_image(path.read_bytes())
        emit(qr.parse(text, layout).as_dict())
    except ValidationError as exc:
        fail(str(exc))
    except KeyError as exc:
        fail(f"unknown QR layout {exc}")


@qr_app.command("render")
def qr_render(text: Annotated[str, typer.Argument(help="The QR text")],
              out: Annotated[Path, typer.Option(help="PNG file to write")]) -> None:
    """Draw a QR code (PNG)."""
    from dinhdanh.ids import qr

    out.write_bytes(qr.render_png(text))
    typer.echo(str(out))


# --------------------------------------------------------------------------------------- PKI


@pki_app.command("init")
def pki_init(
    db: DbOption = None,
    algorithm: Annotated[str, typer.Option(help="ecdsa-p256, ecdsa-p384, brainpool-p256, brainpool-p384, "
                                                "rsa-pss-3072 or rsa-3072")] = "ecdsa-p256",
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2 code in the certificates")] = "VN",
) -> None:
    """Create the Country Signing CA, a first Document Signer and the Master List Signer."""
    from dinhdanh.cards import pki

    engine = engine_for(db, upgrade=True)
    vault = _vault(engine)
    try:
        with engine.begin() as conn:
            emit(pki.init_pki(conn, vault, algorithm=algorithm, country=country))
    except RegistryError as exc:
        fail_registry(exc)


@pki_app.command("status")
def pki_status(db: DbOption = None) -> None:
    """Every key of the PKI: role, validity, usage period, status, how often it was used."""
    from dinhdanh.cards import pki

    with engine_for(db, upgrade=True).begin() as conn:
        emit(pki.pki_status(conn))


@pki_app.command("rotate")
def pki_rotate(db: DbOption = None) -> None:
    """Start a new Document Signer now (the current one retires)."""
    from dinhdanh.cards import pki

    engine = engine_for(db, upgrade=True)
    vault = _vault(engine)
    try:
        with engine.begin() as conn:
            emit({"document_signer": pki.issue_document_signer(conn, vault)})
    except RegistryError as exc:
        fail_registry(exc)


@pki_app.command("revoke")
def pki_revoke(key_id: Annotated[int, typer.Argument(help="Key id (see `pki status`)")],
               reason: Annotated[str, typer.Option(help="key_compromise, superseded, cessation_of_operation")]
               = "key_compromise", db: DbOption = None) -> None:
    """Revoke a Document Signer (or the Master List Signer) and publish a new CRL."""
    from dinhdanh.cards import pki

    engine = engine_for(db, upgrade=True)
    vault = _vault(engine)
    try:
        with engine.begin() as conn:
            emit(pki.revoke_key(conn, vault, key_id, reason))
    except RegistryError as exc:
        fail_registry(exc)


@pki_app.command("export")
def pki_export(out: Annotated[Path, typer.Option(help="Folder to write into")], db: DbOption = None) -> None:
    """Write csca.pem, csca.der, masterlist.ml (CMS) and crl.der for relying parties."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from dinhdanh.cards import pki

    engine = engine_for(db, upgrade=True)
    vault = _vault(engine)
    try:
        with engine.begin() as conn:
            cscas = pki.csca_certificates(conn)
            ml = pki.master_list(conn, vault)
            crl = pki.latest_crl(conn)
    except RegistryError as exc:
        fail_registry(exc)
    out.mkdir(parents=True, exist_ok=True)
    (out / "csca.der").write_bytes(cscas[0])
    (out / "csca.pem").write_bytes(b"".join(
        x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM) for d in cscas))
    (out / "masterlist.ml").write_bytes(ml)
    if crl:
        (out / "crl.der").write_bytes(crl)
    emit(sorted(p.name for p in out.iterdir()))


@trust_app.command("add")
def trust_add(file: Annotated[Path, typer.Argument(help="DER or PEM file")],
              kind: Annotated[str, typer.Option(help="csca, master_list or crl")] = "csca",
              db: DbOption = None) -> None:
    """Trust a foreign CSCA certificate, a CSCA master list or a CRL for chip verification."""
    from dinhdanh.cards import pki

    if not file.is_file():
        fail(f"no file at {file}")
    data = file.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        from asn1crypto import pem

        try:
            _, _, data = pem.unarmor(data.lstrip())
        except ValueError as exc:
            fail(f"{file}: not a PEM file ({exc})")
    try:
        with engine_for(db, upgrade=True).begin() as conn:
            emit(pki.add_trust_anchor(conn, data, kind))
    except RegistryError as exc:
        fail_registry(exc)


# ------------------------------------------------------------------------------------- cards


@card_app.command("issue")
def card_issue(pid: Annotated[str, typer.Argument(help="Personal ID number")],
               kind: Annotated[str | None, typer.Option(help="first, renewal, reissue_lost, reissue_damaged, "
                                                             "reissue_changed (default: from the register)")]
               = None,
               reason: Annotated[str | None, typer.Option(help="Why (kept with the application)")] = None,
               db: DbOption = None) -> None:
    """Apply, approve, produce and hand over a card in one go; prints the card (JSON)."""
    from dinhdanh.cards import lifecycle

    engine = engine_for(db, upgrade=True)
    vault = _vault(engine)
    try:
        with engine.begin() as conn:
            emit(lifecycle.issue_card(conn, vault, _actor(), pid, kind, reason))
    except RegistryError as exc:
        fail_registry(exc)


@card_app.command("list")
def card_list(pid: Annotated[str, typer.Argument(help="Personal ID number")], db: DbOption = None) -> None:
    """A person's cards and applications (JSON)."""
    from dinhdanh.audit.service import record_access
    from dinhdanh.cards import lifecycle
    from dinhdanh.registry.records import find_person

    try:
        with engine_for(db, upgrade=True).begin() as conn:
            result = lifecycle.cards_of(conn, _actor(), pid)
            record_access(conn, actor_label(), [find_person(conn, pid).person_id], "cards", "identity_card")
    except RegistryError as exc:
        fail_registry(exc)
    emit(result)


@card_app.command("revoke")
def card_revoke(pid: Annotated[str, typer.Argument(help="Personal ID number")],
                reason: Annotated[str, typer.Option(help="lost, replaced, death, data_changed, damaged")],
                db: DbOption = None) -> None:
    """Revoke the person's issued card."""
    from dinhdanh.cards import lifecycle

    try:
        with engine_for(db, upgrade=True).begin() as conn:
            emit(lifecycle.revoke_card(conn, _actor(), pid, reason))
    except RegistryError as exc:
        fail_registry(exc)


@card_app.command("export")
def card_export(pid: Annotated[str, typer.Argument(help="Personal ID number")],
                out: Annotated[Path, typer.Option(help="Folder for the chip files, csca.pem, front.png, back.png")],
                db: DbOption = None) -> None:
    """Write the latest card's chip files, the CSCA certificate and images of both faces."""
    from dinhdanh.audit.service import record_access
    from dinhdanh.cards import chip, lifecycle, pki

    engine = engine_for(db, upgrade=True)
    vault = _vault(engine)
    try:
        with engine.begin() as conn:
            card = lifecycle.card_of(conn, _actor(), pid)
            csca = pki.csca_certificates(conn)[0]
            record_access(conn, actor_label(), [card.person_id], "export_card", "identity_card")
            written = chip.write_card(card, vault, csca, out)
    except RegistryError as exc:
        fail_registry(exc)
    emit({"folder": str(out), "files": written})


def _b64_option(value: str | None, name: str) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        fail(f"--{name} is not valid base64")


@card_app.command("verify")
def card_verify(
    folder: Annotated[Path, typer.Argument(help="Folder of chip files: EF.COM, DG1.bin, DG2.bin, ..., EF.SOD")],
    challenge: Annotated[str | None, typer.Option(help="Active Authentication challenge (base64)")] = None,
    response: Annotated[str | None, typer.Option(help="The chip's response (base64)")] = None,
    active_authentication: Annotated[bool, typer.Option(
        "--active-authentication", help="Act as the chip of a card issued here and run Active Authentication")]
    = False,
    db: DbOption = None,
) -> None:
    """Verify a chip read (passive and active authentication, the register); JSON; exit 1 unless valid."""
    import hashlib
    import os

    import sqlalchemy as sa

    from dinhdanh.audit.service import record_access
    from dinhdanh.cards import chip, verification
    from dinhdanh.cards.tables import cards

    if not folder.is_dir():
        fail(f"no folder at {folder}")
    named = chip.read_chip_dir(folder)
    if not named:
        fail(f"{folder} holds no chip files (EF.COM, DG1.bin ... EF.SOD)")
    challenge_bytes = _b64_option(challenge, "challenge")
    response_bytes = _b64_option(response, "response")
    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            files = verification.chip_files(named)
            if active_authentication:
                card = conn.execute(sa.select(cards).where(
                    cards.c.sod_digest == hashlib.sha256(files[-1]).hexdigest())).first()
                if card is None:
                    fail("--active-authentication needs a card issued here (no card has this EF.SOD)")
                challenge_bytes = os.urandom(8)
                response_bytes = chip.respond_to_challenge(card, _vault(engine), challenge_bytes)
            report, person_id = verification.verify_card(conn, files, challenge=challenge_bytes,
                                                         response=response_bytes)
            if person_id is not None:
                record_access(conn, actor_label(), [person_id], "verify_card", "identity_check")
    except RegistryError as exc:
        fail_registry(exc)
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    if report["verdict"] != "valid":
        raise typer.Exit(1)
