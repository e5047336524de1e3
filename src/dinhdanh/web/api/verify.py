"""``POST /api/v1/verify``: a partner checks what a person told it against the register (domain s.7).

The partner authenticates with an access token from the client-credentials grant (scope
``dinhdanh.verify``); it must be an active partner whose policy includes ``verify`` and every
field it sends. The answer says, per field sent, ``match``, ``mismatch`` or ``match_folded`` (a
name or address equal only without diacritics: not a match), and never a value of the register.
Every call about a known person is written to the access log (outcome ``match``, ``mismatch``
or ``refused``).

A partner whose policy has an area (``partners.area_of``) sees only the persons of that area: a
person outside it is answered exactly as an unknown PID (``found: false``, or the same refusal),
nothing is written to the access log, and the lookup takes the same path (the former PIDs are
searched too, as for a number that is no current PID).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dinhdanh.audit import service as audit
from dinhdanh.cards import lifecycle
from dinhdanh.cards.tables import cards
from dinhdanh.exchange import ladder
from dinhdanh.exchange.partners import area_of
from dinhdanh.ids import names, phone
from dinhdanh.registry.area import Area
from dinhdanh.registry.tables import former_pids, persons
from dinhdanh.web.api.partner_auth import Credentials, authenticate_partner
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import replica_unit, uow_of
from dinhdanh.web.errors import error_body

CHECKED = ("full_name", "date_of_birth", "sex", "phone", "address")
router = APIRouter(prefix="/api/v1", tags=["exchange"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody},
                              429: {"model": ErrorBody}})

TEXT = r"^[^\x00-\x1f\x7f]*$"


class VerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    pid: Annotated[str, Field(pattern=r"^[0-9]{12}$", description="The personal ID number (12 digits)")]
    full_name: Annotated[str | None, Field(min_length=1, max_length=100, pattern=TEXT)] = None
    date_of_birth: Annotated[str | None, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                                               description="YYYY-MM-DD")] = None
    sex: Literal["male", "female"] | None = None
    phone: Annotated[str | None, Field(pattern=r"^\+?[0-9 .-]{6,20}$")] = None
    address: Annotated[str | None, Field(min_length=1, max_length=200, pattern=TEXT)] = None
    purpose: Annotated[str | None, Field(pattern=r"^[a-z_]{1,40}$",
                                         description="One of the partner's purpose codes (default: its first)")] = None

    @model_validator(mode="after")
    def _something_to_check(self):
        if not self.sent():
            raise ValueError(f"send at least one of {', '.join(CHECKED)}")
        if self.date_of_birth is not None:
            try:
                dt.date.fromisoformat(self.date_of_birth)
            except ValueError:
                raise ValueError("date_of_birth is not a date (YYYY-MM-DD)") from None
        return self

    def sent(self) -> list[str]:
        return [f for f in CHECKED if getattr(self, f) is not None]


class VerifyAnswer(BaseModel):
    found: bool
    match: bool = Field(description="True only when every field sent matches exactly")
    fields: dict[str, Literal["match", "mismatch", "match_folded"]] = Field(default_factory=dict)
    status: Literal["alive", "dead", "missing"] | None = Field(
        default=None, description="Only for partners whose policy includes `status`")
    card: Literal["current", "expired", "revoked", "none"] | None = Field(
        default=None, description="Only for partners whose policy includes `card`")




def _text_result(sent: str, held: str | None) -> str:
    if held is None:
        return "mismatch"
    if names.match_key(sent) == names.match_key(held):
        return "match"
    if names.fold(sent) == names.fold(held):
        return "match_folded"
    return "mismatch"


def compare(body: VerifyBody, person) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in body.sent():
        sent = getattr(body, f)
        if f in ("full_name", "address"):
            out[f] = _text_result(sent, getattr(person, f))
        elif f == "date_of_birth":
            out[f] = "match" if dt.date.fromisoformat(sent) == person.date_of_birth else "mismatch"
        elif f == "sex":
            out[f] = "match" if sent == person.sex else "mismatch"
        elif f == "phone":
            out[f] = "match" if person.phone and phone.compact(sent) == phone.compact(person.phone) else "mismatch"
    return out


# built once (the hot path): the person by current PID, then by former PID
_BY_PID = sa.select(persons).where(persons.c.pid == sa.bindparam("pid"))
_BY_FORMER_PID = sa.select(persons).join(former_pids, former_pids.c.person_id == persons.c.person_id) \
    .where(former_pids.c.pid == sa.bindparam("pid"))


def visible_person(conn: sa.Connection, pid: str, area: Area):
    """The person ``pid`` names (current or former PID) if they are in ``area``, else None. A person
    outside the area goes the way of an unknown number: the former PIDs are searched as well."""
    row = conn.execute(_BY_PID, {"pid": pid}).first()
    if row is None or not area.covers(row):
        row = conn.execute(_BY_FORMER_PID, {"pid": pid}).first()
    return row if row is not None and area.covers(row) else None


def card_state(conn: sa.Connection, person_id: int) -> str:
    card = lifecycle.current_card(conn, person_id)
    if card is not None:
        return "expired" if lifecycle.effective_status(card) == "expired" else "current"
    latest = conn.execute(sa.select(cards.c.status).where(cards.c.person_id == person_id)
                          .order_by(cards.c.card_id.desc()).limit(1)).scalar()
    return "revoked" if latest == "revoked" else "none"


@router.post("/verify", summary="Check a person's data against the register (partners)",
             response_model=VerifyAnswer, response_model_exclude_none=True)
async def verify(body: VerifyBody, request: Request, credentials: Credentials):
    # The hot path of the exchange: authentication and the work share one unit of work, in one hop
    # to the thread pool (as dependencies they took three), committed before the answer.
    return await run_in_threadpool(_verify, body, request, credentials)


def _verify(body: VerifyBody, request: Request, credentials) -> VerifyAnswer | JSONResponse:
    with uow_of(request).begin() as conn:
        partner = authenticate_partner(request, conn, credentials, "verify")
        # the register is read on the replica only if it has every commit made before this point
        # (store.replica): a death recorded a second ago, by any worker, decides the answer
        with replica_unit(request, conn, current=True) as data:
            return check_person(body, partner, conn, data)


def check_person(body: VerifyBody, partner: sa.Row, conn: sa.Connection, data: sa.Connection | None = None):
    """The answer; the register is read on ``data`` (a replica's unit; default ``conn``), the
    access log and the ladder written on ``conn`` (the primary's unit, committed before the answer)."""
    data = conn if data is None else data
    actor = f"partner:{partner.client_id}"
    sent = body.sent()
    person = visible_person(data, body.pid, area_of(partner))

    def refuse(message: str, field: str, code: str):
        if person is not None:  # committed with the transaction: the answer is not an exception
            audit.record_access(conn, actor, [person.person_id], "verify", body.purpose or partner.purposes[0],
                                fields=sent, outcome="refused")
        return error_body(403, code, message, field)

    purpose = body.purpose or partner.purposes[0]
    if purpose not in partner.purposes:
        return refuse(f"The purpose {purpose!r} is not among this partner's purposes "
                      f"({', '.join(partner.purposes)}).", "purpose", "purpose_not_allowed")
    outside = [f for f in sent if f not in partner.fields]
    if outside:
        return refuse(f"This partner may not check the field(s): {', '.join(outside)}.", outside[0],
                      "field_not_allowed")
    if person is None:
        return VerifyAnswer(found=False, match=False)
    results = compare(body, person)
    matched = all(r == "match" for r in results.values())
    answer = VerifyAnswer(found=True, match=matched, fields=results)
    if "status" in partner.fields:
        answer.status = person.status
    if "card" in partner.fields:
        answer.card = card_state(data, person.person_id)
    audit.record_access(conn, actor, [person.person_id], "verify", purpose, fields=sent,
                        outcome="match" if matched else "mismatch")
    if partner.kind == "telco" and body.phone and ladder.reverifies(results):  # the subscription is re-verified
        ladder.reverified(conn, partner.client_id, body.phone, "re-verified by the telco (POST /api/v1/verify)")
    return answer

