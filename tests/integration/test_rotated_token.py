"""A relying party's refresh granted without Authlib's dispatch (``Provider._rotated_token``), on
SQLite and PostgreSQL: it grants exactly what the general way (``RefreshTokenGrant``) grants, and
whatever it does not grant goes the general way, nothing written on the way, so that the answer and
what is left in the database (a token exchanged, a family revoked) are the general way's."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import KeySet

from dinhdanh.eid.tables import eid_accounts
from dinhdanh.oidc import keys, tokens
from dinhdanh.oidc.server import HttpRequest, Provider
from dinhdanh.oidc.tables import oidc_tokens
from dinhdanh.store.base import utcnow
from tests.oidc_support import TOKEN_ISSUER as ISSUER
from tests.oidc_support import AN, BINH, add_client, basic, load_people, token_answer, token_request

RP = ["authorization_code", "refresh_token"]


@pytest.fixture
def people(engine, tmp_path):
    return load_people(engine, tmp_path)


def _mint(engine, client: dict, account_id: int, *, scope: str = "openid profile", **row) -> str:
    """A refresh token as the code exchange stores it (a family of its own, level 1, passcode)."""
    value, now = tokens.new_id() + tokens.new_id(), utcnow()
    with engine.begin() as conn:
        tokens.store(conn, **{"kind": "refresh", "value": value, "jti": tokens.new_jti(),
                              "client_id": client["client_id"], "scope": scope, "issued_at": now,
                              "expires_at": now + tokens.REFRESH_TTL, "account_id": account_id,
                              "family_id": tokens.new_id(), "acr": "http://eidas.europa.eu/LoA/low",
                              "amr": ["pwd"], "auth_time": now - dt.timedelta(minutes=5), **row})
    return value


def _http(client: dict, refresh: str, form=None, headers=(), secret: str | None = None, query=()) -> HttpRequest:
    form = [("grant_type", "refresh_token"), ("refresh_token", refresh)] if form is None else form
    return token_request(client, form, headers, secret, query)


_grant = token_answer


def _row(engine, value: str):
    with engine.begin() as conn:
        return conn.execute(sa.select(oidc_tokens).where(oidc_tokens.c.token_hash == tokens.digest(value))).one()


def _family(engine, value: str) -> list:
    """(kind, exchanged, revoked reason) of every token of ``value``'s family, oldest first."""
    family = _row(engine, value).family_id
    with engine.begin() as conn:
        rows = conn.execute(sa.select(oidc_tokens).where(oidc_tokens.c.family_id == family)
                            .order_by(oidc_tokens.c.token_id)).all()
    return [(r.kind, r.rotated_at is not None, r.revoke_reason) for r in rows]


def _claims(engine, token: str) -> dict:
    with engine.begin() as conn:
        published = KeySet.import_key_set(keys.published_jwks(conn))
    return jwt.decode(token, published).claims


def test_the_fast_path_grants_what_the_general_way_grants(engine, people, monkeypatch):
    rp = add_client(engine, grant_types=RP)
    account = people.accounts[AN]
    signed_in = utcnow() - dt.timedelta(minutes=5)
    general_token, fast_token = (_mint(engine, rp, account, auth_time=signed_in) for _ in range(2))
    general = _grant(engine, people.vault, _http(rp, general_token), general=True)
    monkeypatch.setattr(Provider, "get_token_grant", lambda *a: pytest.fail("the general way was taken"))
    fast = _grant(engine, people.vault, _http(rp, fast_token))
    for status, body, headers, written in (general, fast):
        assert status == 200 and written == 2
        assert headers == {"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}
        assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert {k: v for k, v in fast[1].items() if k not in ("access_token", "refresh_token")} == \
        {k: v for k, v in general[1].items() if k not in ("access_token", "refresh_token")}
    one, other = (_claims(engine, got[1]["access_token"]) for got in (general, fast))
    varying = {"jti", "iat", "exp"}
    assert {k: v for k, v in one.items() if k not in varying} == {k: v for k, v in other.items() if k not in varying}
    assert other["scope"] == "openid profile" and other["acr"] == "http://eidas.europa.eu/LoA/low"
    # the rows: the old token exchanged, the new access and refresh rows alike in both ways
    same = ("kind", "client_id", "scope", "account_id", "session_id", "claims", "acr", "amr", "auth_time", "jkt",
            "rotated_at", "revoked_at")
    for old, got in ((general_token, general), (fast_token, fast)):
        assert _row(engine, old).rotated_at is not None
        assert _family(engine, old) == [("refresh", True, None), ("access", False, None), ("refresh", False, None)]
    def new_rows(got) -> list:
        with engine.connect() as conn:
            access = tokens.find(conn, got[1]["access_token"], "access").row
        return [[getattr(row, c) for c in same] for row in (access, _row(engine, got[1]["refresh_token"]))]

    assert new_rows(general) == new_rows(fast)
    assert new_rows(fast)[0][:2] == ["access", rp["client_id"]]
    # the new refresh token is refreshed again, the fast way
    again = _grant(engine, people.vault, _http(rp, fast[1]["refresh_token"]))
    assert again[0] == 200 and _claims(engine, again[1]["access_token"])["sub"] == other["sub"]


def _declined(engine, people, case: str):
    """(request maker, refresh token value) for a case the fast path does not grant."""
    rp = add_client(engine, grant_types=RP)
    account = people.accounts[AN]
    now = utcnow()
    if case == "exchanged before (reuse)":
        value = _mint(engine, rp, account)
        with engine.begin() as conn:
            conn.execute(oidc_tokens.update().where(oidc_tokens.c.token_hash == tokens.digest(value))
                         .values(rotated_at=now))
    elif case == "revoked":
        value = _mint(engine, rp, account)
        with engine.begin() as conn:
            tokens.revoke_family(conn, _row(engine, value).family_id, "logout")
    elif case == "expired":
        value = _mint(engine, rp, account, expires_at=now - dt.timedelta(seconds=1))
    elif case == "another client's":
        value = _mint(engine, add_client(engine, name="Dịch vụ khác", grant_types=RP), account)
    elif case == "bound to a DPoP key":
        value = _mint(engine, rp, account, jkt="0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    elif case == "account locked":
        value = _mint(engine, rp, account)
        with engine.begin() as conn:
            conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account).values(state="locked"))
    elif case == "client without the refresh grant":
        rp = add_client(engine, name="Chỉ mã", grant_types=["authorization_code"])
        value = _mint(engine, rp, account)
    elif case == "client not approved":
        rp = add_client(engine, name="Chưa duyệt", grant_types=RP, approve=False)
        value = _mint(engine, rp, account)
    else:
        value = _mint(engine, rp, account)
    grant = ("grant_type", "refresh_token")
    make = {
        "unknown token": lambda: _http(rp, "not-a-token-we-issued"),
        "wrong secret": lambda: _http(rp, value, secret="not-the-secret"),
        "a scope asked": lambda: _http(rp, value, form=[grant, ("refresh_token", value), ("scope", "openid")]),
        "a wider scope asked": lambda: _http(rp, value, form=[grant, ("refresh_token", value),
                                                              ("scope", "openid profile email")]),
        "repeated refresh_token": lambda: _http(rp, value, form=[grant, ("refresh_token", value),
                                                                 ("refresh_token", value)]),
        "no refresh_token": lambda: _http(rp, value, form=[grant, ("scope", "openid")]),
        "client_id in the form": lambda: _http(rp, value, form=[grant, ("refresh_token", value),
                                                                ("client_id", rp["client_id"])]),
        "a query": lambda: _http(rp, value, query=[("x", "1")]),
        "a DPoP header": lambda: _http(rp, value, headers=[("dpop", "not-a-proof")]),
        "no Basic header": lambda: HttpRequest("POST", ISSUER + "/token", form=[grant, ("refresh_token", value)]),
    }.get(case, lambda: _http(rp, value))
    return make, value


CASES = ["exchanged before (reuse)", "revoked", "expired", "another client's", "bound to a DPoP key", "account locked",
         "client without the refresh grant", "client not approved", "unknown token", "wrong secret", "a scope asked",
         "a wider scope asked", "repeated refresh_token", "no refresh_token", "client_id in the form", "a query",
         "a DPoP header", "no Basic header"]


@pytest.mark.parametrize("case", CASES)
def test_what_the_fast_path_does_not_grant_goes_the_general_way(engine, people, case, monkeypatch):
    """The same case twice, on fresh rows: once as the endpoint takes it (the fast path declines,
    then the general way answers), once the general way alone. The answers are the same, and so is
    what is left in the database (the token exchanged or not, its family revoked or not)."""
    outcomes = []
    for general in (False, True):
        make, value = _declined(engine, people, case)
        answered = []
        plain_token = Provider._plain_token
        monkeypatch.setattr(Provider, "_plain_token", lambda self, r: answered.append(plain_token(self, r)))
        got = _grant(engine, people.vault, make(), general=general)
        monkeypatch.undo()
        assert answered == ([None] if not general else [])
        family = _family(engine, value) if case != "unknown token" else None
        outcomes.append((got[0], got[1] if got[0] >= 400 else sorted(got[1]), got[3],
                         [f[1:] for f in family[:1]] if family else family))
        if case == "account locked":
            with engine.begin() as conn:
                conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == people.accounts[AN])
                             .values(state="active"))
    assert outcomes[0] == outcomes[1], outcomes
    status = outcomes[0][0]
    if case in ("a scope asked", "client_id in the form", "a query"):
        assert status == 200  # Authlib grants these (a narrower scope; an extra parameter)
    else:
        assert status >= 400 and outcomes[0][2] == 0, outcomes
    if case == "repeated refresh_token":  # RFC 6749 s.3.2, the token left as it was
        assert outcomes[0][1] == {"error": "invalid_request", "error_description": "Repeated parameter: refresh_token."}
        assert outcomes[0][3] == [(False, None)]
    if case == "exchanged before (reuse)":  # the whole family revoked, by the general way
        assert outcomes[0][3] == [(True, "refresh_reused")]
    if case == "account locked":  # the general way exchanges the token before it finds the account locked
        assert outcomes[0][3] == [(True, None)]


def test_a_token_exchanged_concurrently_is_refused_and_its_family_revoked(engine, people, monkeypatch):
    """Between the fast path's read and its marking, another request exchanges the same token: the
    marking fails, and the general way reads the token again, finds it exchanged, refuses, and
    revokes the family (reuse, RFC 9700 s.4.14.2)."""
    rp = add_client(engine, grant_types=RP)
    value = _mint(engine, rp, people.accounts[BINH])
    mark_rotated = tokens.mark_rotated

    def raced(conn, token_id, now):
        conn.execute(oidc_tokens.update().where(oidc_tokens.c.token_id == token_id).values(rotated_at=now))
        return mark_rotated(conn, token_id, now)

    monkeypatch.setattr(tokens, "mark_rotated", raced)
    status, body, _, written = _grant(engine, people.vault, _http(rp, value))
    assert (status, body["error"], written) == (400, "invalid_grant", 0)
    assert _family(engine, value) == [("refresh", True, "refresh_reused")]


def test_one_token_presented_by_many_threads_is_exchanged_once(engine, people):
    """Eight concurrent presentations of one refresh token (the endpoint's unit of work, real
    threads): one is granted; the others are refused, and since a refused one is a reuse the family
    ends revoked, the new tokens with it."""
    from dinhdanh.store.unit_of_work import UnitOfWork

    rp = add_client(engine, grant_types=RP)
    value = _mint(engine, rp, people.accounts[BINH])
    uow, start, answers = UnitOfWork(engine), threading.Barrier(8), []

    def present():
        start.wait()
        with uow.begin() as conn:
            answers.append(Provider(conn, people.vault, ISSUER).create_token_response(_http(rp, value))[:2])

    threads = [threading.Thread(target=present) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(status for status, _ in answers) == [200] + [400] * 7
    assert {body["error"] for status, body in answers if status == 400} == {"invalid_grant"}
    family = _family(engine, value)
    assert family[0] == ("refresh", True, "refresh_reused") and len(family) == 3
    assert all(reason == "refresh_reused" for _, _, reason in family)


def test_one_token_sent_many_times_at_once_over_http_is_exchanged_once(engine, people):
    """The app itself (on SQLite its group commit puts requests read together in one transaction,
    one after another; on PostgreSQL concurrent units in the pool): eight requests with one refresh
    token, sent at once. One gets new tokens, seven are refused, and the family ends revoked."""
    import asyncio

    import httpx

    from dinhdanh.web.app import create_app
    from dinhdanh.web.oidc import set_issuer

    rp = add_client(engine, grant_types=RP)
    value = _mint(engine, rp, people.accounts[BINH])
    app = create_app(engine)
    app.state.vault = people.vault
    set_issuer(app, ISSUER)

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
            return await asyncio.gather(*(client.post(
                "/token", data={"grant_type": "refresh_token", "refresh_token": value},
                headers={"Authorization": basic(rp["client_id"], rp["client_secret"])}) for _ in range(8)))

    answers = asyncio.run(send_all())
    assert sorted(r.status_code for r in answers) == [200] + [400] * 7, [r.text for r in answers]
    assert {r.json()["error"] for r in answers if r.status_code == 400} == {"invalid_grant"}
    family = _family(engine, value)
    assert len(family) == 3 and all(reason == "refresh_reused" for _, _, reason in family)
