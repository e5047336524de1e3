"""Every integer a client sends (query, path, JSON body) has a declared range, so that a value out of
it is a 422 naming the field, never a 500 (an integer too large for SQLite or PostgreSQL raised
OverflowError or a driver error in the query). The routes and their integers are read from the
app's OpenAPI document, so a future route cannot forget."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.security.base import SecurityBase
from fastapi.testclient import TestClient

from dinhdanh.web.app import create_app
from tests.e2e.test_oidc_flow import ISSUER, RP_SCOPES, Op
from tests.oidc_support import HOA, add_client, load_people

HUGE, NEGATIVE = 10**30, -1
APP = create_app(sa.create_engine("sqlite://"))
SPEC = APP.openapi()
COMPONENTS = SPEC.get("components", {}).get("schemas", {})


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].split("/")[-1]]
    return schema


def _integers(schema: dict, path: tuple = (), seen: frozenset = frozenset()):
    """(path, schema) of every integer in a request schema (properties, items, unions)."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        if name in seen:
            return
        seen = seen | {name}
        schema = COMPONENTS[name]
    if schema.get("type") == "integer":
        yield path, schema
    for name, prop in (schema.get("properties") or {}).items():
        yield from _integers(prop, (*path, name), seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            yield from _integers(option, path, seen)
    if isinstance(schema.get("items"), dict):
        yield from _integers(schema["items"], (*path, 0), seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _integers(schema["additionalProperties"], (*path, "key"), seen)


def request_integers():
    """(method, path, where, field path, schema) of every integer a request can carry."""
    for url, operations in SPEC["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                for sub, schema in _integers(param.get("schema", {})):
                    yield method.upper(), url, param["in"], (param["name"], *sub), schema
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                for sub, schema in _integers(content.get("schema", {})):
                    yield method.upper(), url, media, sub, schema


INTEGERS = list(request_integers())


def _bounded(schema: dict) -> bool:
    if "enum" in schema or "const" in schema:  # a finite set of values (a Literal) is its own range
        return True
    return (("minimum" in schema or "exclusiveMinimum" in schema)
            and ("maximum" in schema or "exclusiveMaximum" in schema))


def test_the_schema_has_integers_to_check():
    assert len(INTEGERS) >= 15  # limits, pages, ids, cursors, levels, days ...
    wheres = {w for _, _, w, _, _ in INTEGERS}
    assert {"query", "path", "application/json"} <= wheres, wheres


def test_every_integer_a_request_carries_declares_its_range():
    unbounded = [f"{m} {u} {w}:{'.'.join(map(str, f))}" for m, u, w, f, s in INTEGERS if not _bounded(s)]
    assert unbounded == []


# --------------------------------------------------------------------- out of range is a 422


def _without_credentials(app) -> None:
    """Every dependency that checks a bearer token (officer, partner, e-ID session, OIDC access
    token) answers a stub, so that the request reaches validation: FastAPI runs dependencies
    before it reports the route's own invalid parameters."""
    def visit(dependant):
        for dep in dependant.dependencies:
            if any(isinstance(sub.call, SecurityBase) for sub in dep.dependencies) \
                    or getattr(dep.call, "permission", None):  # an officer route's permission (web.deps.require)
                app.dependency_overrides[dep.call] = lambda: None
            visit(dep)

    def routes(of):  # included routers keep their routes (FastAPI 0.16x: ``original_router``)
        for route in of:
            if getattr(route, "original_router", None) is not None:
                yield from routes(route.original_router.routes)
            else:
                yield route

    for route in routes(app.routes):
        if getattr(route, "dependant", None) is not None:
            visit(route.dependant)


def _nested(field: tuple, value) -> dict | list:
    head, *rest = field
    inner = value if not rest else _nested(tuple(rest), value)
    return [inner] if head == 0 else {head: inner}


PLACEHOLDER = {"pid": "001085000001", "batch_id": "A" * 22, "msisdn": "0912345678", "number": "VNM000001"}


@pytest.fixture(scope="module")
def http():
    app = create_app(sa.create_engine("sqlite://"))
    _without_credentials(app)
    return TestClient(app, base_url="https://testserver", raise_server_exceptions=False)


@pytest.mark.parametrize("value", [HUGE, NEGATIVE], ids=["huge", "negative"])
@pytest.mark.parametrize("method,url,where,field,schema", INTEGERS,
                         ids=[f"{m} {u} {w}:{'.'.join(map(str, f))}" for m, u, w, f, _ in INTEGERS])
def test_an_integer_out_of_range_is_a_422_naming_it(http, method, url, where, field, schema, value):
    if "enum" in schema and value in schema["enum"]:
        pytest.skip("in the enum")
    params, body = {}, None
    path = url
    for name in re.findall(r"\{(\w+)\}", url):
        filler = str(value) if where == "path" and name == field[0] else PLACEHOLDER.get(name, "1")
        path = path.replace("{" + name + "}", filler)
    if where == "query":
        params[field[0]] = str(value)
    elif where == "application/json":
        body = _nested(field, value)
    elif where != "path":
        pytest.skip(f"integers in {where} are not sent by this test")
    r = http.request(method, path, params=params, json=body)
    assert r.status_code == 422, (r.status_code, r.text[:300])
    error = r.json()["error"]
    named = {p["field"] for p in error.get("problems", [])} | {error["field"]}
    assert ".".join(map(str, field)) in named, error


@pytest.fixture
def op(engine, tmp_path) -> Op:
    people = load_people(engine, tmp_path)
    rp = add_client(engine, scopes=RP_SCOPES)
    return Op(engine, people, rp, TestClient(create_app(engine), base_url=ISSUER, follow_redirects=False))


def test_the_access_log_cursor_past_any_id_is_refused_not_a_500(op):
    """The testers' 500 (OverflowError): a cursor past any id, with a citizen's real access token."""
    LOG = "/api/v1/me/access-log"
    token = {"Authorization": f"Bearer {op.tokens(scope='openid dinhdanh.me', who=HOA)['access_token']}"}
    r = op.http.get(LOG, params={"before": "99999999999999999999999"}, headers=token)
    assert r.status_code == 422 and r.json()["error"]["field"] == "before", r.text
    assert op.http.get(LOG, params={"before": str(2**63 - 1)}, headers=token).status_code == 200
    assert op.http.get(LOG, params={"before": "0"}, headers=token).status_code == 422
