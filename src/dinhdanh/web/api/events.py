"""Officers record life events: one route per kind, each with its own validated body."""


from fastapi import APIRouter

from dinhdanh.registry.commands import EVENT_KINDS, Command
from dinhdanh.registry.events import Actor, record_event
from dinhdanh.web.api.schemas import ErrorBody, EventOutcome
from dinhdanh.web.deps import Allowed, Conn
from dinhdanh.web.metrics import EVENTS

router = APIRouter(prefix="/api/v1/events", tags=["life events"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
Registrar = Allowed("register.events")


def _route(kind: str, model: type[Command]):
    def record(body: model, conn: Conn, officer: Registrar):  # type: ignore[valid-type]
        outcome = record_event(conn, Actor(officer.label, officer.area), kind, body).as_dict()
        EVENTS.labels(kind).inc()
        return outcome

    record.__name__ = "record_" + kind.replace("-", "_")
    record.__doc__ = (model.__doc__ or kind).strip()
    router.add_api_route(f"/{kind}", record, methods=["POST"], response_model=EventOutcome, status_code=201,
                         summary=f"Record a {kind.replace('-', ' ')}")


for _kind, _model in EVENT_KINDS.items():
    _route(_kind, _model)
