"""Batch matching over the API and the telcos' mismatch ladder (domain s.7), for partners.

``POST /api/v1/batches`` takes a CSV or Parquet file (multipart field ``file``) and answers 202
with the batch's opaque id; the runner beside the API (``exchange.batches.runner_loop``, or
``dinhdanh batches run``) matches it; ``GET /api/v1/batches/{id}`` gives its progress and, when
done, the counts; ``/result`` streams the result file. A partner sees only its own batches.
``/api/v1/subscribers`` shows a telco the state of its subscriptions on the mismatch ladder.

An upload over ``DINHDANH_BATCH_MAX_BYTES`` is refused as it arrives, by the app's body-size
middleware (``web.body_limits``, this route's rule), before anything is spooled.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from dinhdanh.exchange import batches, ladder
from dinhdanh.registry.errors import Forbidden
from dinhdanh.web.api.partner_auth import BatchPartner
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Conn


router = APIRouter(prefix="/api/v1", tags=["exchange"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody},
                              429: {"model": ErrorBody}})
BatchId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{22}$", description="The batch's id, as POST answered")]
Msisdn = Annotated[str, Path(pattern=r"^\+?[0-9]{3,15}$", description="The subscription's number")]


class Counts(BaseModel):
    match: int
    mismatch: int
    not_found: int
    invalid: int


class BatchStatus(BaseModel):
    batch_id: str
    status: Literal["queued", "running", "done", "failed"]
    purpose: str
    input_format: Literal["csv", "parquet"]
    result_format: Literal["csv", "parquet"]
    input_size: int
    input_sha256: str = Field(description="SHA-256 of the file as received")
    rows_total: int | None = Field(description="Rows of the input, once the runner has counted them")
    rows_done: int
    progress: float = Field(ge=0, le=1)
    created_at: str
    finished_at: str | None
    summary: Counts | None = Field(description="Rows per outcome, when done")
    error: str | None = Field(description="Why the batch failed (no personal data)")
    links: dict[str, str]


class BatchList(BaseModel):
    items: list[BatchStatus]


class Step(BaseModel):
    state: str
    on: str


class HistoryEntry(BaseModel):
    state: str
    on: str
    cause: str


class Subscription(BaseModel):
    msisdn: str
    state: Literal["notified", "one_way_locked", "two_way_locked", "terminated", "cleared"]
    outcome: str | None
    reason: str | None
    detected_on: str
    notify_by: str
    notified_on: str
    changed_on: str
    next: Step | None = Field(description="The next step and its day, unless cleared or terminated")
    history: list[HistoryEntry] | None = None


class SubscriptionPage(BaseModel):
    counts: dict[str, int]
    page: int
    items: list[Subscription]
    has_next: bool


def _links(batch_id: str) -> dict[str, str]:
    base = f"/api/v1/batches/{batch_id}"
    return {"self": base, "result": f"{base}/result"}


def _shaped(view: dict) -> dict:
    return {**view, "links": _links(view["batch_id"])}


@router.post("/batches", summary="Upload a subscriber file to match against the register (partners)",
             status_code=202, response_model=BatchStatus,
             responses={413: {"model": ErrorBody}, 202: {"headers": {"Location": {"schema": {"type": "string"}}}}})
def upload_batch(request: Request, partner: BatchPartner, conn: Conn,
                 file: Annotated[UploadFile, File(description="CSV (UTF-8, header row) or Parquet: pid, full_name, "
                                                              "date_of_birth, optional msisdn and sex")],
                 purpose: Annotated[str | None, Form(pattern=r"^[a-z_]{1,40}$",
                                                     description="One of the partner's purpose codes")] = None,
                 format: Annotated[Literal["csv", "parquet"] | None,
                                   Form(description="Format of the result (default: the input's)")] = None):
    limit = batches.max_upload_bytes()
    if file.size is not None and file.size > limit:
        raise batches.TooLarge(limit)
    made = batches.submit(conn, partner, file.file, purpose=purpose, result_format=format, max_bytes=limit)
    body = _shaped(batches.status(conn, partner.client_id, made["batch_id"]))
    return JSONResponse(BatchStatus(**body).model_dump(mode="json"), status_code=202,
                        headers={"Location": body["links"]["self"]})


@router.get("/batches", summary="The partner's batches, newest first", response_model=BatchList)
def list_batches(partner: BatchPartner, conn: Conn,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100):
    return {"items": [_shaped(v) for v in batches.list_batches(conn, partner.client_id, limit)]}


@router.get("/batches/{batch_id}", summary="A batch's status and progress", response_model=BatchStatus,
            responses={404: {"model": ErrorBody}})
def batch_status(batch_id: BatchId, partner: BatchPartner, conn: Conn):
    return _shaped(batches.status(conn, partner.client_id, batch_id))


@router.get("/batches/{batch_id}/result", summary="The result file of a finished batch",
            response_class=FileResponse,
            responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}},
                       404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
def batch_result(batch_id: BatchId, partner: BatchPartner, conn: Conn):
    path, media_type = batches.result_file(conn, partner.client_id, batch_id)
    return FileResponse(path, media_type=media_type, filename=f"{batch_id}-result{path.suffix}")


@router.delete("/batches/{batch_id}", summary="Delete a finished batch's files (its record stays)",
               status_code=204, response_class=Response,
               responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
def delete_batch(batch_id: BatchId, partner: BatchPartner, conn: Conn):
    batches.delete(conn, partner.client_id, batch_id)
    return Response(status_code=204)


def _telco(partner) -> None:
    if partner.kind != "telco":
        raise Forbidden("Only a telecommunications partner has subscriptions on the mismatch ladder.",
                        code="not_a_telco", field="partner")


@router.get("/subscribers/{msisdn}", summary="A subscription on the mismatch ladder (telcos)",
            response_model=Subscription, responses={404: {"model": ErrorBody}})
def subscriber(msisdn: Msisdn, partner: BatchPartner, conn: Conn):
    _telco(partner)
    return ladder.show(conn, partner.client_id, msisdn)


@router.get("/subscribers", summary="The telco's subscriptions on the mismatch ladder, with counts per state",
            response_model=SubscriptionPage)
def subscribers(partner: BatchPartner, conn: Conn,
                state: Literal["notified", "one_way_locked", "two_way_locked", "terminated", "cleared"] | None = None,
                page: Annotated[int, Query(ge=1, le=100_000)] = 1):
    _telco(partner)
    return ladder.list_subscriptions(conn, partner.client_id, state, page)
