"""Chip ID cards: the card lifecycle for officers, chip verification for relying parties, and the
public PKI artefacts (CSCA certificate, CSCA master list, CRL) that verifiers need."""

import base64
import binascii
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dinhdanh.audit.service import record_access
from dinhdanh.cards import lifecycle, pki, verification
from dinhdanh.cards.tables import APPLICATION_KINDS, REVOCATION_REASONS
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.registry.events import Actor
from dinhdanh.store.vault import Vault, for_database
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import DEFAULT, Allowed, Conn, Purpose

router = APIRouter(prefix="/api/v1", tags=["cards"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
# Each step its own permission: who files does not approve (cards.lifecycle refuses it as well).
Applicant = Allowed("cards.apply")
Approver = Allowed("cards.approve")
Producer = Allowed("cards.produce")
Handing = Allowed("cards.hand_over")
Revoker = Allowed("cards.revoke")
CardReader = Allowed("cards.read")
Checker = Allowed("identity.check")

Pid = Annotated[str, Field(pattern=r"^[0-9]{12}$", description="Personal ID number, 12 digits")]
PidPath = Annotated[str, Path(pattern=r"^[0-9]{12}$", description="Personal ID number, 12 digits")]
Reason = Annotated[str | None, Field(default=None, max_length=500, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")]
MAX_FILE = 1_000_000  # base64 characters per chip file (DG2 with a large JPEG2000 fits)


def vault_of(request: Request) -> Vault:
    vault = getattr(request.app.state, "vault", None)
    if vault is None:
        vault = for_database(request.app.state.engine.url.render_as_string(hide_password=False))
        request.app.state.vault = vault
    return vault


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ApplicationBody(Strict):
    pid: Pid
    kind: Literal[APPLICATION_KINDS] | None = Field(  # type: ignore[valid-type]
        default=None, description="first, renewal or a re-issue; worked out from the register when omitted")
    reason: Reason = None


class RejectBody(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")]


class RevokeBody(Strict):
    pid: Pid
    reason: Literal[REVOCATION_REASONS]  # type: ignore[valid-type]


class VerifyBody(Strict):
    files: dict[Annotated[str, Field(pattern=r"^(EF\.COM|EF\.SOD|DG([1-9]|1[0-6]))$")],
                Annotated[str, Field(max_length=MAX_FILE)]] = Field(
        description="Chip files by name (EF.COM, EF.SOD, DG1 ... DG16), each base64")
    challenge: Annotated[str | None, Field(default=None, max_length=64,
                                           description="Active Authentication challenge (base64, 8 bytes)")] = None
    response: Annotated[str | None, Field(default=None, max_length=2048,
                                          description="The chip's Active Authentication response (base64)")] = None

    @field_validator("files")
    @classmethod
    def _need_sod(cls, files: dict) -> dict:
        if "EF.SOD" not in files:
            raise ValueError("EF.SOD is required")
        return files


def _b64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field} is not valid base64.", field=field) from None


def _actor(officer) -> Actor:
    return Actor(officer.label, officer.area)


@router.post("/cards/applications", status_code=201, summary="Apply for a card")
def apply(body: ApplicationBody, conn: Conn, officer: Applicant) -> dict:
    return lifecycle.submit_application(conn, _actor(officer), body.pid, body.kind, body.reason)


AppId = Annotated[int, Path(ge=1, le=2**62)]


@router.post("/cards/applications/{application_id}/approve",
             summary="Approve an application (not the officer who filed it: 403 separation_of_duties)")
def approve(application_id: AppId, conn: Conn, officer: Approver) -> dict:
    return lifecycle.approve_application(conn, _actor(officer), application_id)


@router.post("/cards/applications/{application_id}/reject", summary="Reject an application")
def reject(application_id: AppId, body: RejectBody, conn: Conn, officer: Approver) -> dict:
    return lifecycle.reject_application(conn, _actor(officer), application_id, body.reason)


@router.post("/cards/applications/{application_id}/produce", status_code=201,
             summary="Produce the card of an approved application (chip signed by the Document Signer)")
def produce(application_id: AppId, request: Request, conn: Conn, officer: Producer) -> dict:
    return lifecycle.produce_card(conn, vault_of(request), _actor(officer), application_id)


@router.post("/cards/{card_id}/hand-over", summary="Hand the produced card to its holder")
def hand_over(card_id: AppId, conn: Conn, officer: Handing) -> dict:
    return lifecycle.hand_over(conn, _actor(officer), card_id)


# No "whole path" route: one officer filing and approving is what separation of duties forbids (the
# operator's ``dinhdanh card issue``, run with database access for demos and tests, keeps it).


@router.post("/cards/revoke", summary="Revoke the holder's card (lost, replaced, death, data changed)")
def revoke(body: RevokeBody, conn: Conn, officer: Revoker) -> dict:
    return lifecycle.revoke_card(conn, _actor(officer), body.pid, body.reason)


@router.get("/citizens/{pid}/cards", summary="A citizen's cards and applications")
def citizen_cards(pid: PidPath, conn: Conn, officer: CardReader, purpose: Purpose = DEFAULT) -> dict:
    from dinhdanh.registry.records import find_person

    person = find_person(conn, pid, officer.area)
    result = lifecycle.cards_of(conn, _actor(officer), pid)
    record_access(conn, officer.label, [person.person_id], "cards", purpose, fields=["cards"], outcome="ok")
    return result


@router.post("/cards/verify", summary="Verify a chip read: passive and active authentication, the register")
def verify(body: VerifyBody, conn: Conn, officer: Checker, purpose: Purpose = "identity_check") -> dict:
    named = {name: _b64(value, name) for name, value in body.files.items()}
    files = verification.chip_files(named)
    challenge = _b64(body.challenge, "challenge") if body.challenge is not None else None
    response = _b64(body.response, "response") if body.response is not None else None
    report, person_id = verification.verify_card(conn, files, challenge=challenge, response=response)
    if person_id is not None:
        # what the register compared with the chip; the outcome is the verdict (valid / untrusted / invalid)
        record_access(conn, officer.label, [person_id], "verify_card", purpose, fields=["card", "record"],
                      outcome=report["verdict"])
    return report


@router.get("/pki/csca.pem", tags=["pki"], summary="The Country Signing CA certificate (PEM)",
            response_class=Response, responses={200: {"content": {"application/x-pem-file": {}}}})
def csca_pem(conn: Conn) -> Response:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = b"".join(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
                   for der in pki.csca_certificates(conn))
    return Response(pem, media_type="application/x-pem-file")


@router.get("/pki/master-list", tags=["pki"], summary="The CSCA master list (CMS, DER)",
            response_class=Response, responses={200: {"content": {"application/pkcs7-mime": {}}}})
def master_list(request: Request, conn: Conn) -> Response:
    return Response(pki.master_list(conn, vault_of(request)), media_type="application/pkcs7-mime")


@router.get("/pki/crl", tags=["pki"], summary="The latest CRL of the CSCA (DER)",
            response_class=Response, responses={200: {"content": {"application/pkix-crl": {}}}})
def crl(conn: Conn) -> Response:
    from dinhdanh.registry.errors import NotFound

    der = pki.latest_crl(conn)
    if der is None:
        raise NotFound("No CRL has been issued yet: run `dinhdanh pki init`.", field="pki")
    return Response(der, media_type="application/pkix-crl")
