"""Officers' permissions, areas and separation of duties over HTTP, on SQLite and PostgreSQL.

The register is FAMILY (tests/support.py): An's family in Hà Nội (commune 00070), Đức and Hoa in Hồ
Chí Minh City (province 79, commune 26743). Each officer holds the roles of one duty; the commune
and province officers act only there. Every officer route declares one permission, and every
permission a role gives is used by some route.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dinhdanh.audit.tables import access_log
from dinhdanh.cards import pki
from dinhdanh.cards.tables import card_applications, cards
from dinhdanh.cli import app as cli_app
from dinhdanh.eid.tables import account_locks, eid_registrations, lock_requests
from dinhdanh.officers.permissions import PERMISSIONS, ROLES
from dinhdanh.officers.service import add_officer
from dinhdanh.officers.tables import officer_roles
from dinhdanh.registry.tables import events, persons
from dinhdanh.store.base import utcnow
from dinhdanh.web.app import create_app
from dinhdanh.web.deps import current_officer, permission_of
from tests import chips
from tests.chips import AN, BINH, DUC, HOA
from tests.eid_support import enroll, issue, jpeg

# who: (area level, area code, roles)
OFFICERS = {
    "registrar": ("national", None, ["registrar"]),
    "card_officer": ("national", None, ["card_officer", "card_approver"]),  # files, and approves others' files
    "card_approver": ("national", None, ["card_approver"]),
    "eid_national": ("national", None, ["eid_officer", "eid_supervisor"]),
    "eid_hanoi": ("commune", "00070", ["eid_officer"]),
    "supervisor_hanoi": ("commune", "00070", ["eid_supervisor"]),
    "supervisor_hcmc": ("province", "79", ["eid_supervisor"]),
    "auditor": ("national", None, ["auditor"]),
    "admin": ("national", None, ["administrator"]),
    "admin_hcmc": ("province", "79", ["administrator"]),
    "partner_admin": ("national", None, ["partner_admin"]),
}


@dataclass
class Api:
    client: TestClient
    engine: sa.Engine
    tokens: dict[str, str]
    ids: dict[str, int]
    accounts: dict[str, int]
    vault: object

    def headers(self, who: str, lang: str = "en") -> dict:
        return {"Authorization": f"Bearer {self.tokens[who]}", "Accept-Language": lang}

    def get(self, url: str, who: str, lang: str = "en", **params):
        return self.client.get(url, headers=self.headers(who, lang), params=params)

    def post(self, url: str, who: str, body=None, lang: str = "en"):
        return self.client.post(url, json=body, headers=self.headers(who, lang))

    def delete(self, url: str, who: str):
        return self.client.delete(url, headers=self.headers(who))

    def person_id(self, pid: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()

    def snapshot(self) -> dict:
        with self.engine.connect() as conn:
            return {t.name: conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all()
                    for t in (persons, events, cards, card_applications, lock_requests, account_locks,
                              eid_registrations, officer_roles, access_log)}


@pytest.fixture
def api(family) -> Api:
    vault = chips.new_vault()
    chips.reset_caches()
    tokens, ids = {}, {}
    with family.begin() as conn:
        pki.init_pki(conn, vault)
        for who, (level, area, roles) in OFFICERS.items():
            officer, tokens[who] = add_officer(conn, f"Cán bộ {who}", level, area, roles=roles, granted_by="test")
            ids[who] = officer.officer_id
    accounts = {}
    for pid in (AN, DUC):
        issue(family, vault, pid)
        accounts[pid] = enroll(family, vault, pid)["account_id"]
    app = create_app(family)
    app.state.vault = vault
    yield Api(TestClient(app, raise_server_exceptions=False), family, tokens, ids, accounts, vault)
    chips.reset_caches()


def error_of(r, status: int, code: str, field: str | None = "<any>") -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    if field != "<any>":
        assert error["field"] == field, error
    return error


def pending_registration(api: Api, pid: str) -> int:
    """A registration waiting for an officer's review (the face matcher was not sure), as the app leaves it."""
    vault = api.vault
    with api.engine.begin() as conn:
        return conn.execute(eid_registrations.insert().values(
            channel="app", kind="citizen", level=1, person_id=api.person_id(pid), msisdn="0912345001",
            status="pending_review", checks={"face": {"outcome": "not_checked"}},
            face=vault.seal(jpeg(), "eid-face"), created_at=utcnow(),
        ).returning(eid_registrations.c.registration_id)).scalar_one()


# ------------------------------------------------------------------------------- permissions


def test_a_registrar_cannot_revoke_a_card_and_is_told_which_permission_in_both_languages(api):
    before = api.snapshot()
    body = {"pid": AN, "reason": "lost"}
    en = error_of(api.post("/api/v1/cards/revoke", "registrar", body), 403, "permission_denied", "permission")
    assert "cards.revoke" in en["message"] and "card_officer" in en["message"]
    vi = error_of(api.post("/api/v1/cards/revoke", "registrar", body, lang="vi"), 403, "permission_denied")
    assert "cards.revoke" in vi["message"] and "Thu hồi thẻ căn cước" in vi["message"]
    assert vi["title"] == "Không có quyền"
    assert api.snapshot() == before  # nothing revoked, nothing logged
    # what a registrar may do, it does
    r = api.post("/api/v1/events/temporary-absence", "registrar",
                 {"pid": HOA, "from_date": "2025-01-01", "until": "2025-06-30", "destination": "Đà Nẵng"})
    assert r.status_code == 201, r.text
    assert api.get(f"/api/v1/citizens/{AN}", "registrar").status_code == 200


def test_without_a_credential_it_is_still_401_not_403(api):
    r = api.client.post("/api/v1/cards/revoke", json={"pid": AN, "reason": "lost"})
    error_of(r, 401, "unauthenticated")


def test_an_auditor_reads_the_access_log_but_not_records(api):
    assert api.get(f"/api/v1/citizens/{AN}", "registrar", purpose="residence").status_code == 200
    error_of(api.get(f"/api/v1/citizens/{AN}", "auditor"), 403, "permission_denied")
    error_of(api.get("/api/v1/citizens", "auditor", name="nguyen"), 403, "permission_denied")
    error_of(api.get(f"/api/v1/citizens/{AN}/cards", "auditor"), 403, "permission_denied")
    r = api.get("/api/v1/audit/entries", "auditor", pid=AN, purpose="investigation")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["who"]["label"], i["action"], i["purpose"]["code"]) for i in items] == [
        (f"officer:{api.ids['registrar']}", "read", "residence")]
    # the auditor's read of An's log is itself in An's log, with the auditor's identity
    again = api.get("/api/v1/audit/entries", "auditor", pid=AN).json()["items"]
    assert (again[0]["who"]["label"], again[0]["action"], again[0]["purpose"]["code"]) == (
        f"officer:{api.ids['auditor']}", "access_log", "investigation")
    error_of(api.get("/api/v1/audit/entries", "registrar", pid=AN), 403, "permission_denied")
    error_of(api.get("/api/v1/audit/entries", "auditor", pid="001099999999"), 404, "not_found", "pid")


def test_the_administrator_manages_roles_but_does_no_operational_work(api):
    error_of(api.get(f"/api/v1/citizens/{AN}", "admin"), 403, "permission_denied")
    registrar = api.ids["registrar"]
    r = api.post(f"/api/v1/officers/{registrar}/roles", "admin", {"role": "data_steward"})
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["data_steward", "registrar"] and "quality.read" in r.json()["permissions"]
    assert api.get("/api/v1/quality", "registrar").status_code == 200  # at once, on the next request
    error_of(api.post(f"/api/v1/officers/{registrar}/roles", "admin", {"role": "data_steward"}), 409, "role_held")
    error_of(api.post(f"/api/v1/officers/{registrar}/roles", "admin", {"role": "superuser"}), 422, "invalid_input")
    r = api.delete(f"/api/v1/officers/{registrar}/roles/data_steward", "admin")
    assert r.status_code == 200 and r.json()["roles"] == ["registrar"], r.text
    error_of(api.get("/api/v1/quality", "registrar"), 403, "permission_denied")
    error_of(api.delete(f"/api/v1/officers/{registrar}/roles/data_steward", "admin"), 409, "role_not_held")
    history = api.get(f"/api/v1/officers/{registrar}", "admin").json()["role_history"]
    admin = f"officer:{api.ids['admin']}"
    assert [(h["role"], h["granted_by"], h["withdrawn_by"]) for h in history] == [
        ("registrar", "test", None), ("data_steward", admin, admin)]
    # never their own roles; officers outside their area are unknown to them
    error_of(api.post(f"/api/v1/officers/{api.ids['admin']}/roles", "admin", {"role": "registrar"}), 403,
             "separation_of_duties", "officer_id")
    error_of(api.post(f"/api/v1/officers/{registrar}/roles", "admin_hcmc", {"role": "auditor"}), 404, "not_found")
    error_of(api.get(f"/api/v1/officers/{api.ids['eid_hanoi']}", "admin_hcmc"), 404, "not_found")
    assert api.get(f"/api/v1/officers/{api.ids['supervisor_hcmc']}", "admin_hcmc").status_code == 200
    error_of(api.get("/api/v1/officers/999999", "admin_hcmc"), 404, "not_found")


def test_partner_administration_is_its_own_role(api):
    assert api.get("/api/v1/partners", "partner_admin").json() == []
    error_of(api.get("/api/v1/partners", "admin"), 403, "permission_denied")
    error_of(api.get("/api/v1/partners/dd-nobody", "partner_admin"), 404, "not_found", "client_id")


# ------------------------------------------------------------------------ separation of duties


def test_who_files_a_card_application_cannot_approve_it_even_as_a_card_approver(api):
    r = api.post("/api/v1/cards/applications", "card_officer", {"pid": BINH})
    assert r.status_code == 201, r.text
    app_id = r.json()["application_id"]
    before = api.snapshot()
    error = error_of(api.post(f"/api/v1/cards/applications/{app_id}/approve", "card_officer"), 403,
                     "separation_of_duties", "application_id")
    vi = error_of(api.post(f"/api/v1/cards/applications/{app_id}/approve", "card_officer", lang="vi"), 403,
                  "separation_of_duties")
    assert error["message"] != vi["message"] and "phê duyệt" in vi["message"]
    assert api.snapshot() == before
    r = api.post(f"/api/v1/cards/applications/{app_id}/approve", "card_approver")
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    with api.engine.connect() as conn:
        row = conn.execute(sa.select(card_applications).where(card_applications.c.application_id == app_id)).one()
    assert (row.submitted_by, row.decided_by) == (f"officer:{api.ids['card_officer']}",
                                                  f"officer:{api.ids['card_approver']}")
    # and the whole path at once is no longer offered to officers
    assert api.post("/api/v1/cards/issue", "card_officer", {"pid": HOA}).status_code in (404, 405)


def test_who_files_a_lock_request_cannot_decide_it(api):
    r = api.post("/api/v1/eid/lock-requests", "eid_national", {"username": AN, "authority": "Cơ quan điều tra",
                                                                "reason": "Nghi lừa đảo"})
    assert r.status_code == 201, r.text
    request_id = r.json()["request_id"]
    error_of(api.post(f"/api/v1/eid/lock-requests/{request_id}/decision", "eid_national",
                      {"approve": True, "reason": "Đồng ý"}), 403, "separation_of_duties", "request_id")
    r = api.post(f"/api/v1/eid/lock-requests/{request_id}/decision", "supervisor_hanoi",
                 {"approve": True, "reason": "Đồng ý"})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    assert r.json()["decided_by"] == f"officer:{api.ids['supervisor_hanoi']}"


# -------------------------------------------------------------------------------------- areas


def test_lock_requests_follow_the_area(api):
    # the Hà Nội officer cannot file for a person of Hồ Chí Minh City: as if there were no such account
    unknown = api.post("/api/v1/eid/lock-requests", "eid_hanoi",
                       {"username": "001099999999", "authority": "X", "reason": "Y"})
    elsewhere = api.post("/api/v1/eid/lock-requests", "eid_hanoi", {"username": DUC, "authority": "X", "reason": "Y"})
    error_of(elsewhere, 404, "not_found")
    assert elsewhere.json() == unknown.json()
    hcmc = api.post("/api/v1/eid/lock-requests", "eid_national", {"username": DUC, "authority": "Ngân hàng",
                                                                  "reason": "Mạo danh"}).json()["request_id"]
    hanoi = api.post("/api/v1/eid/lock-requests", "eid_hanoi", {"username": AN, "authority": "Ngân hàng",
                                                                "reason": "Mạo danh"}).json()["request_id"]
    assert [x["request_id"] for x in api.get("/api/v1/eid/lock-requests", "supervisor_hanoi").json()] == [hanoi]
    assert [x["request_id"] for x in api.get("/api/v1/eid/lock-requests", "supervisor_hcmc").json()] == [hcmc]
    assert {x["request_id"] for x in api.get("/api/v1/eid/lock-requests", "eid_national").json()} == {hanoi, hcmc}
    before = api.snapshot()
    decision = {"approve": True, "reason": "Đồng ý"}
    outside = api.post(f"/api/v1/eid/lock-requests/{hcmc}/decision", "supervisor_hanoi", decision)
    missing = api.post("/api/v1/eid/lock-requests/999999/decision", "supervisor_hanoi", decision)
    error_of(outside, 404, "not_found", "request_id")
    assert outside.json() == missing.json()
    assert api.snapshot() == before
    assert api.post(f"/api/v1/eid/lock-requests/{hcmc}/decision", "supervisor_hcmc", decision).status_code == 200
    # the sweep runs over the whole country: national officers only
    error_of(api.post("/api/v1/eid/sweep", "supervisor_hanoi"), 403, "forbidden", "area")
    r = api.post("/api/v1/eid/sweep", "eid_national")
    assert r.status_code == 200, r.text


def test_registrations_follow_the_area_and_one_elsewhere_is_not_found(api):
    hanoi, hcmc = pending_registration(api, AN), pending_registration(api, DUC)
    assert [x["registration_id"] for x in api.get("/api/v1/eid/registrations", "supervisor_hanoi").json()] == [hanoi]
    assert [x["registration_id"] for x in api.get("/api/v1/eid/registrations", "supervisor_hcmc").json()] == [hcmc]
    assert [x["registration_id"] for x in api.get("/api/v1/eid/registrations", "eid_national").json()] == [
        hanoi, hcmc]
    before = api.snapshot()
    # detail: the face and the card photo of someone elsewhere are answered exactly as an unknown id
    outside = api.get(f"/api/v1/eid/registrations/{hcmc}", "supervisor_hanoi")
    missing = api.get("/api/v1/eid/registrations/999999", "supervisor_hanoi")
    error_of(outside, 404, "registration_not_found", "registration_id")
    assert outside.content == missing.content
    review = {"decision": "refuse", "reason": "Ảnh không rõ"}
    outside = api.post(f"/api/v1/eid/registrations/{hcmc}/review", "supervisor_hanoi", review)
    missing = api.post("/api/v1/eid/registrations/999999/review", "supervisor_hanoi", review)
    error_of(outside, 404, "registration_not_found")
    assert outside.content == missing.content
    assert api.snapshot() == before  # nothing decided, nothing read
    r = api.get(f"/api/v1/eid/registrations/{hanoi}", "supervisor_hanoi")
    assert r.status_code == 200 and r.json()["pid"] == AN and r.json()["face_image"], r.text
    with api.engine.connect() as conn:
        logged = conn.execute(sa.select(access_log.c.actor, access_log.c.person_id, access_log.c.action)
                              .where(access_log.c.action == "eid_registration")).all()
    assert [tuple(x) for x in logged] == [(f"officer:{api.ids['supervisor_hanoi']}", api.person_id(AN),
                                           "eid_registration")]
    r = api.post(f"/api/v1/eid/registrations/{hcmc}/review", "supervisor_hcmc", review)
    assert r.status_code == 200 and r.json()["status"] == "refused", r.text
    # an e-ID officer files and enrols; reviewing is the supervisor's
    error_of(api.get("/api/v1/eid/registrations", "eid_hanoi"), 403, "permission_denied")


def test_foreigners_are_national_officers_work(api):
    body = {"number": "FRA123456", "full_name": "Marie Dupont", "date_of_birth": "1990-01-01", "sex": "female",
            "nationality": "FRA", "passport_number": "P1234567", "passport_expiry": "2035-01-01"}
    error_of(api.post("/api/v1/eid/foreigners", "eid_hanoi", body), 403, "forbidden", "area")
    assert api.post("/api/v1/eid/foreigners", "eid_national", body).status_code == 201
    error_of(api.post("/api/v1/eid/foreigners", "registrar", body), 403, "permission_denied")


# ----------------------------------------------------------------------------- every route


def _routes(of):
    for route in of:  # included routers keep their routes (FastAPI 0.16x: ``original_router``)
        if getattr(route, "original_router", None) is not None:
            yield from _routes(route.original_router.routes)
        elif getattr(route, "dependant", None) is not None:
            yield route


def _uses(dependant, call) -> bool:
    return any(d.call is call or _uses(d, call) for d in dependant.dependencies)


def test_every_officer_route_declares_a_permission_and_every_permission_is_used():
    app = create_app(sa.create_engine("sqlite://"))
    used, missing = {}, []
    for route in _routes(app.routes):
        permission = permission_of(route.dependant)
        if _uses(route.dependant, current_officer) and permission is None:
            missing.append(f"{sorted(route.methods)} {route.path}")
        if permission is not None:
            assert permission in PERMISSIONS, (route.path, permission)
            used.setdefault(permission, []).append(route.path)
    assert not missing, f"officer routes without a permission: {missing}"
    granted = set().union(*(role.permissions for role in ROLES.values()))
    assert granted == set(PERMISSIONS) == set(used), (set(PERMISSIONS) - set(used), set(PERMISSIONS) - granted)


# -------------------------------------------------------------------------------------- CLI


def test_cli_grants_and_withdraws_roles_on_record(api, family):
    db = family.url.render_as_string(hide_password=False)
    if family.dialect.name == "postgresql":  # the test's own schema, as the engine's connections have it
        with family.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        db += f"{'&' if '?' in db else '?'}options=-csearch_path%3D{schema}"
    registrar = api.ids["registrar"]
    runner = CliRunner()
    r = runner.invoke(cli_app, ["officer", "grant", str(registrar), "auditor", "--db", db])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["roles"] == ["auditor", "registrar"]
    assert api.get("/api/v1/audit/entries", "registrar", pid=AN).status_code == 200
    r = runner.invoke(cli_app, ["officer", "grant", str(registrar), "auditor", "--db", db])
    assert r.exit_code == 1 and "auditor" in r.output
    r = runner.invoke(cli_app, ["officer", "grant", str(registrar), "emperor", "--db", db])
    assert r.exit_code == 2 and "role" in r.output
    r = runner.invoke(cli_app, ["officer", "withdraw", str(registrar), "auditor", "--db", db])
    assert r.exit_code == 0 and json.loads(r.stdout)["roles"] == ["registrar"], r.output
    error_of(api.get("/api/v1/audit/entries", "registrar", pid=AN), 403, "permission_denied")
    with family.connect() as conn:
        grants = conn.execute(sa.select(officer_roles).where(officer_roles.c.officer_id == registrar,
                                                             officer_roles.c.role == "auditor")).all()
    assert len(grants) == 1 and grants[0].granted_by.startswith("cli") and grants[0].withdrawn_by.startswith("cli")
    assert grants[0].withdrawn_at >= grants[0].granted_at
