"""Change notifications for partners (operation ``subscribe``): the follow list, subscriptions
with signed webhooks, dead letters, and the pull feed ``GET /api/v1/changes?after=SEQ``.

Every route authenticates the partner with ``partner_for("subscribe")``; the work is done by
``dinhdanh.changes.service`` in the request's transaction. The background loop that routes and
delivers (and publishes to NATS when configured) is registered here for ``serve``/``demo``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from dinhdanh.changes import service
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.api.partner_auth import SubscribePartner
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Conn


router = APIRouter(prefix="/api/v1", tags=["exchange"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody},
                              429: {"model": ErrorBody}})
Kind = Literal[service.KINDS]  # type: ignore[valid-type]
SubscriptionId = Annotated[int, Field(ge=1, le=2**53)]
PidText = Annotated[str, Field(min_length=1, max_length=20)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FollowBody(Strict):
    pids: Annotated[list[PidText], Field(min_length=1, max_length=service.MAX_PIDS_PER_CALL,
                                         description="Personal ID numbers (12 digits) to follow")]
    days: Annotated[int, Field(ge=1, le=service.MAX_FOLLOW_DAYS, description="How long to follow them")] = 90


class FollowItem(BaseModel):
    pid: str
    status: Literal["following", "invalid"] = Field(
        description="following: every well-formed PID (the answer does not tell which are persons this "
                    "partner may see; only those are followed and notified about); invalid: not 12 digits")
    expires_at: str | None = None


class FollowAnswer(BaseModel):
    items: list[FollowItem]
    following: int


class FollowEntry(BaseModel):
    pid: str
    expires_at: str
    created_at: str


class FollowList(BaseModel):
    items: list[FollowEntry]
    next_after: int | None


class SubscriptionBody(Strict):
    kinds: Annotated[list[Kind], Field(min_length=1, max_length=len(service.KINDS))]
    scope: Literal["follows", "area"]
    area_code: Annotated[str | None, Field(pattern=r"^([0-9]{2}|[0-9]{5})$",
                                           description="Province (2 digits) or commune (5 digits), scope area")] = None
    webhook_url: Annotated[str | None, Field(min_length=1, max_length=500,
                                             description="https to a public address (http to loopback only "
                                                         "where the operator allows it); none: pull only")] = None


class Subscription(BaseModel):
    subscription_id: int
    kinds: list[str]
    scope: Literal["follows", "area"]
    area_code: str | None
    webhook_url: str | None
    state: Literal["active", "disabled"]
    created_at: str
    webhook_secret: str | None = Field(default=None, description="whsec_...: shown once, at creation")


class DeadLetter(BaseModel):
    seq: int
    type: str
    subscription_id: int
    attempts: int
    last_error: str | None
    occurred_at: str
    client_id: str


class Requeued(BaseModel):
    requeued: int


class Removed(BaseModel):
    removed: int


class ChangeEvent(BaseModel):
    type: str
    timestamp: str
    data: dict[str, Any]


class Feed(BaseModel):
    events: list[ChangeEvent]
    next_after: int


@router.post("/follows", response_model=FollowAnswer, summary="Follow persons for a while (partners)")
def follow(body: FollowBody, partner: SubscribePartner, conn: Conn):
    return service.follow(conn, partner, body.pids, body.days)


@router.get("/follows", response_model=FollowList, summary="The persons this partner follows")
def list_follows(partner: SubscribePartner, conn: Conn,
                 after: Annotated[int, Query(ge=0, le=2**53)] = 0,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    return service.list_follows(conn, partner, after=after, limit=limit)


@router.delete("/follows", response_model=Removed,
               summary="Stop following persons (removed: the distinct PIDs given, none followed now)")
def unfollow(partner: SubscribePartner, conn: Conn,
             pid: Annotated[list[Annotated[str, Field(pattern=r"^[0-9]{12}$")]],
                            Query(min_length=1, max_length=service.MAX_PIDS_PER_CALL)]):
    return service.unfollow(conn, partner, pid)


@router.post("/subscriptions", response_model=Subscription, response_model_exclude_none=False, status_code=201,
             summary="Subscribe to event kinds (the webhook secret is in this answer only)")
def subscribe(body: SubscriptionBody, partner: SubscribePartner, conn: Conn, request: Request):
    return service.create_subscription(conn, vault_of(request), partner, kinds=list(body.kinds), scope=body.scope,
                                       area_code=body.area_code, webhook_url=body.webhook_url)


@router.get("/subscriptions", response_model=list[Subscription], summary="This partner's subscriptions")
def list_subscriptions(partner: SubscribePartner, conn: Conn):
    return service.list_subscriptions(conn, partner)


@router.get("/subscriptions/{subscription_id}", response_model=Subscription, responses={404: {"model": ErrorBody}})
def get_subscription(subscription_id: SubscriptionId, partner: SubscribePartner, conn: Conn):
    return service.get_subscription(conn, partner, subscription_id)


@router.delete("/subscriptions/{subscription_id}", response_model=Subscription, responses={404: {"model": ErrorBody}},
               summary="Stop a subscription (its pending messages go to the dead letters)")
def unsubscribe(subscription_id: SubscriptionId, partner: SubscribePartner, conn: Conn):
    return service.disable_subscription(conn, partner, subscription_id)


@router.get("/subscriptions/{subscription_id}/dead-letters", response_model=list[DeadLetter],
            responses={404: {"model": ErrorBody}}, summary="Messages that could not be delivered")
def dead_letters(subscription_id: SubscriptionId, partner: SubscribePartner, conn: Conn):
    return service.partner_dead_letters(conn, partner, subscription_id)


@router.post("/subscriptions/{subscription_id}/dead-letters/retry", response_model=Requeued,
             responses={404: {"model": ErrorBody}}, summary="Send the dead letters again")
def retry_dead_letters(subscription_id: SubscriptionId, partner: SubscribePartner, conn: Conn):
    return service.partner_requeue(conn, partner, subscription_id)


@router.get("/changes", response_model=Feed, summary="The pull feed: events routed to this partner after a seq")
def changes(partner: SubscribePartner, conn: Conn,
            after: Annotated[int, Query(ge=0, le=2**53, description="The last seq received (0: from the start)")] = 0,
            limit: Annotated[int, Query(ge=1, le=service.MAX_FEED_PAGE)] = 100):
    return service.feed(conn, partner, after=after, limit=limit)
