"""The card API end to end over HTTP (FastAPI TestClient), on SQLite and PostgreSQL: the path from
application to hand-over, revocation, chip verification for relying parties, the public PKI files.

Officers: in each area (national, the commune 00070: Hà Nội, An, Bình, Châu, Dung; the province 79:
Hồ Chí Minh City, Đức, Hoa, Giang) a card officer, who files, produces, hands over and verifies,
and a card approver ("<area>_approver"), who decides: the one who files never approves.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from cryptography import x509
from fastapi.testclient import TestClient

from dinhdanh.audit.tables import access_log
from dinhdanh.cards import chip, pki
from dinhdanh.cards.tables import card_applications, cards, pki_key_uses, pki_keys
from dinhdanh.ids.lds import certs, masterlist, tlv
from dinhdanh.officers.service import add_officer
from dinhdanh.registry.tables import changes, events, persons
from dinhdanh.store.outbox import outbox
from dinhdanh.store.vault import Vault
from dinhdanh.web.app import create_app
from tests import chips
from tests.chips import AN, BINH, CHAU, DUC, HOA

NAMES = {0: "EF.COM", -1: "EF.SOD"}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def body_of(files: dict[int, bytes], **aa) -> dict:
    return {"files": {NAMES.get(n, f"DG{n}"): b64(raw) for n, raw in files.items()},
            **{k: b64(v) for k, v in aa.items()}}


@pytest.fixture(autouse=True)
def _fresh_caches():
    chips.reset_caches()
    yield
    chips.reset_caches()


@dataclass
class CardApi:
    client: TestClient
    engine: sa.Engine
    vault: Vault
    tokens: dict[str, str]
    labels: dict[str, str]

    def headers(self, who: str = "national") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", "Accept-Language": "en"}

    def post(self, url: str, body=None, who: str = "national", **params):
        return self.client.post(url, json=body, headers=self.headers(who), params=params)

    def get(self, url: str, who: str = "national"):
        return self.client.get(url, headers=self.headers(who))

    def issue(self, pid: str, who: str = "national", **body) -> dict:
        """The path, each step by the officer whose duty it is: apply, approve, produce, hand over."""
        r = self.post("/api/v1/cards/applications", {"pid": pid, **body}, who)
        assert r.status_code == 201, r.text
        app_id = r.json()["application_id"]
        r = self.post(f"/api/v1/cards/applications/{app_id}/approve", who=f"{who}_approver")
        assert r.status_code == 200, r.text
        r = self.post(f"/api/v1/cards/applications/{app_id}/produce", who=who)
        assert r.status_code == 201, r.text
        r = self.post(f"/api/v1/cards/{r.json()['card_id']}/hand-over", who=who)
        assert r.status_code == 200, r.text
        return r.json()

    def card_row(self, card_id: int):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(cards).where(cards.c.card_id == card_id)).one()

    def chip_of(self, card_id: int) -> dict[int, bytes]:
        return chips.files_of(self.card_row(card_id), self.vault)

    def verify(self, files: dict[int, bytes], who: str = "national", **aa):
        return self.post("/api/v1/cards/verify", body_of(files, **aa), who)

    def snapshot(self) -> dict:
        with self.engine.connect() as conn:
            return {t.name: conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all()
                    for t in (persons, events, changes, outbox, cards, card_applications, pki_keys,
                              pki_key_uses, access_log)}


@pytest.fixture
def api(family) -> CardApi:
    vault = chips.new_vault()
    tokens, labels = {}, {}
    with family.begin() as conn:
        pki.init_pki(conn, vault)
        for who, role, area in (("national", "national", None), ("commune", "commune", "00070"),
                                ("province", "province", "79")):
            for suffix, roles in (("", ["card_officer"]), ("_approver", ["card_approver"])):
                officer, token = add_officer(conn, f"Cán bộ {who}{suffix}", role, area, roles=roles)
                tokens[who + suffix], labels[who + suffix] = token, officer.label
        officer, token = add_officer(conn, "Cán bộ hộ tịch", "national", None, roles=["registrar"])
        tokens["registrar"], labels["registrar"] = token, officer.label
    app = create_app(family)
    app.state.vault = vault
    return CardApi(TestClient(app, raise_server_exceptions=False), family, vault, tokens, labels)


def assert_error(r, status: int, code: str | None = None, field: str | None = "<any>") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert {"code", "title", "message", "field"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field != "<any>":
        assert error["field"] == field, error
    return error


# ------------------------------------------------------------------------------------ the path


def test_the_whole_path_over_http(api):
    r = api.post("/api/v1/cards/applications", {"pid": CHAU, "reason": "đủ 14 tuổi"}, "commune")
    assert r.status_code == 201, r.text
    app = r.json()
    assert (app["kind"], app["status"], app["reason"]) == ("first", "submitted", "đủ 14 tuổi")
    app_id = app["application_id"]
    assert_error(api.post("/api/v1/cards/applications", {"pid": CHAU}, "commune"), 409, "application_open")
    assert_error(api.post(f"/api/v1/cards/applications/{app_id}/produce"), 409, "not_approved")

    assert_error(api.post(f"/api/v1/cards/applications/{app_id}/approve", who="commune"), 403, "permission_denied",
                 "permission")
    r = api.post(f"/api/v1/cards/applications/{app_id}/approve", who="commune_approver")
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    assert_error(api.post(f"/api/v1/cards/applications/{app_id}/approve", who="national_approver"), 409,
                 "not_submitted")

    r = api.post(f"/api/v1/cards/applications/{app_id}/produce", who="commune")
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["status"], made["card_number"], made["application_id"]) == ("produced", CHAU, app_id)
    assert len(made["mrz"]) == 3 and made["mrz"][0].startswith("IDVNM") and CHAU in made["mrz"][0]
    assert made["qr"].startswith(CHAU + "|")

    r = api.post(f"/api/v1/cards/{made['card_id']}/hand-over", who="commune")
    assert r.status_code == 200 and r.json()["status"] == "issued", r.text
    assert_error(api.post(f"/api/v1/cards/{made['card_id']}/hand-over"), 409, "not_produced")

    r = api.get(f"/api/v1/citizens/{CHAU}/cards", "commune")
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["pid"] == CHAU
    assert [(c["card_id"], c["status"]) for c in listing["cards"]] == [(made["card_id"], "issued")]
    assert [(a["application_id"], a["status"], a["card_id"]) for a in listing["applications"]] == [
        (app_id, "issued", made["card_id"])]

    r = api.get(f"/api/v1/citizens/{CHAU}/history")
    assert r.status_code == 200, r.text
    kinds = [e["kind"] for e in r.json()["events"]] if isinstance(r.json(), dict) else [e["kind"] for e in r.json()]
    assert [k for k in kinds if k.startswith("card.")] == [
        "card.applied", "card.approved", "card.produced", "card.issued"]

    with api.engine.connect() as conn:
        logged = conn.execute(sa.select(access_log.c.actor, access_log.c.action)
                              .where(access_log.c.action == "cards")).all()
    assert [tuple(row) for row in logged] == [(api.labels["commune"], "cards")]


def test_reject_and_refusals_over_http(api):
    app_id = api.post("/api/v1/cards/applications", {"pid": HOA}, "province").json()["application_id"]
    assert_error(api.post(f"/api/v1/cards/applications/{app_id}/reject", {}, "national_approver"), 422,
                 "invalid_input", "reason")
    assert_error(api.post(f"/api/v1/cards/applications/{app_id}/reject", {"reason": ""}, "national_approver"), 422,
                 "invalid_input")
    r = api.post(f"/api/v1/cards/applications/{app_id}/reject", {"reason": "ảnh không hợp lệ"}, "province_approver")
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    assert_error(api.post(f"/api/v1/cards/applications/{app_id}/approve", who="national_approver"), 409,
                 "not_submitted")

    api.issue(AN)
    assert_error(api.post("/api/v1/cards/applications", {"pid": AN, "kind": "first"}), 409, "not_first_card", "kind")
    assert_error(api.post("/api/v1/cards/applications", {"pid": AN, "kind": "renewal"}), 409, "card_still_valid")
    assert_error(api.post("/api/v1/cards/applications", {"pid": BINH, "kind": "renewal"}), 409, "no_card_yet")
    assert_error(api.post("/api/v1/cards/applications", {"pid": BINH, "kind": "upgrade"}), 422, "invalid_input",
                 "kind")
    assert_error(api.post("/api/v1/cards/applications", {"pid": "123"}), 422, "invalid_input", "pid")
    assert_error(api.post("/api/v1/cards/applications", {"pid": BINH, "extra": 1}), 422, "invalid_input")
    assert_error(api.post("/api/v1/cards/applications", {"pid": "001099999999"}), 404, "not_found", "pid")
    assert_error(api.post("/api/v1/cards/applications/999999/approve", who="national_approver"), 404, "not_found",
                 "application_id")
    assert_error(api.post("/api/v1/cards/applications/0/approve", who="national_approver"), 422, "invalid_input")
    assert_error(api.post("/api/v1/cards/999999/hand-over"), 404, "not_found", "card_id")
    assert_error(api.post("/api/v1/cards/revoke", {"pid": AN, "reason": "stolen"}), 422, "invalid_input", "reason")
    assert_error(api.post("/api/v1/cards/revoke", {"pid": BINH, "reason": "lost"}), 404, "not_found", "pid")
    assert api.post("/api/v1/events/death", {"pid": DUC, "date_of_death": "2024-01-01"}, "registrar").status_code == 201
    assert_error(api.post("/api/v1/cards/applications", {"pid": DUC}), 409, "person_dead", "pid")


def test_revoke_over_http_and_reissue(api):
    first = api.issue(HOA)
    r = api.post("/api/v1/cards/revoke", {"pid": HOA, "reason": "lost"})
    assert r.status_code == 200, r.text
    assert (r.json()["card_id"], r.json()["status"], r.json()["revocation_reason"]) == (first["card_id"], "revoked",
                                                                                         "lost")
    report = api.verify(api.chip_of(first["card_id"])).json()
    assert report["register"]["card"] == "revoked" and report["verdict"] == "invalid"
    second = api.issue(HOA, kind="reissue_changed")
    assert api.verify(api.chip_of(second["card_id"])).json()["verdict"] == "valid"


def test_officers_outside_the_area_see_no_card(api):
    before = api.snapshot()
    assert_error(api.post("/api/v1/cards/applications", {"pid": DUC}, "commune"), 404, "not_found", "pid")
    assert_error(api.get(f"/api/v1/citizens/{DUC}/cards", "commune"), 404, "not_found", "pid")
    assert_error(api.post("/api/v1/cards/revoke", {"pid": AN, "reason": "lost"}, "province"), 404, "not_found")
    assert api.snapshot() == before
    card = api.issue(DUC, "province")
    assert_error(api.get(f"/api/v1/citizens/{DUC}/cards", "commune"), 404, "not_found", "pid")
    app_id = api.post("/api/v1/cards/applications", {"pid": AN}, "commune").json()["application_id"]
    assert_error(api.post(f"/api/v1/cards/applications/{app_id}/approve", who="province_approver"), 404, "not_found")
    assert_error(api.post(f"/api/v1/cards/{card['card_id']}/hand-over", who="commune"), 404, "not_found")


def test_no_token_is_401(api):
    card = api.issue(AN)
    files = body_of(api.chip_of(card["card_id"]))
    for method, url, body in [("POST", "/api/v1/cards/applications", {"pid": AN}),
                              ("POST", "/api/v1/cards/applications/1/approve", None),
                              ("POST", "/api/v1/cards/revoke", {"pid": AN, "reason": "lost"}),
                              ("GET", f"/api/v1/citizens/{AN}/cards", None),
                              ("POST", "/api/v1/cards/verify", files)]:
        for headers in ({}, {"Authorization": "Bearer ddo_not-a-token"}):
            r = api.client.request(method, url, json=body, headers=headers)
            assert_error(r, 401, "unauthenticated")


# ------------------------------------------------------------------------------------ verify


def test_verify_a_genuine_chip_with_active_authentication_and_log_it(api):
    card = api.issue(AN)
    challenge = os.urandom(8)
    response = chip.respond_to_challenge(api.card_row(card["card_id"]), api.vault, challenge)
    r = api.verify(api.chip_of(card["card_id"]), "province", challenge=challenge, response=response)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["verdict"], report["failures"]) == ("valid", [])
    assert report["active_authentication"]["status"] == "passed"
    assert report["register"]["card"] == "current" and report["register"]["card_number"] == AN
    with api.engine.connect() as conn:
        rows = conn.execute(sa.select(access_log).where(access_log.c.action == "verify_card")).all()
        an_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == AN)).scalar_one()
    assert [(row.actor, row.person_id, row.purpose) for row in rows] == [
        (api.labels["province"], an_id, "identity_check")]
    # a bank may verify any card: the officer's area does not limit verification


def test_verify_of_a_chip_of_nobody_logs_nothing(api):
    foreign = chips.foreign_pki("ec", "UT")
    r = api.verify(foreign.passport())
    assert r.status_code == 200 and r.json()["verdict"] == "untrusted", r.text
    with api.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(access_log)).scalar_one() == 0


@pytest.mark.parametrize("break_it, check", [
    (lambda f: {**f, 13: chips.flip(f[13], len(f[13]) // 2)}, "data_groups"),
    (lambda f: {**f, -1: chips.flip(f[-1], len(f[-1]) - 1)}, "signature"),
    (lambda f: {**f, 3: tlv.encode(0x63, b"\x02\x01\x00")}, "data_groups"),
], ids=["dg13-bit", "signature-bit", "dg3-not-in-sod"])
def test_verify_broken_chips_is_200_naming_the_failed_check(api, break_it, check):
    card = api.issue(BINH)
    r = api.verify(break_it(api.chip_of(card["card_id"])))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["verdict"] == "invalid" and [f["check"] for f in report["failures"]] == [check]


def test_verify_a_wrong_active_authentication_answer(api):
    card = api.issue(BINH)
    r = api.verify(api.chip_of(card["card_id"]), challenge=os.urandom(8), response=os.urandom(64))
    assert r.status_code == 200, r.text
    assert [f["check"] for f in r.json()["failures"]] == ["active_authentication"]
    r = api.verify(api.chip_of(card["card_id"]), challenge=os.urandom(8))
    assert [f["check"] for f in r.json()["failures"]] == ["active_authentication"]


def test_verify_refuses_what_is_not_chip_data_with_422_and_changes_nothing(api):
    card = api.issue(AN)
    good = body_of(api.chip_of(card["card_id"]))
    before = api.snapshot()

    def refused(body, field, *words):
        r = api.client.post("/api/v1/cards/verify", json=body, headers=api.headers())
        error = assert_error(r, 422, "invalid_input")
        assert error["field"] == field or (field and str(error["field"]).startswith(field)), error
        for word in words:
            assert word in error["message"], error
        return error

    refused({**good, "files": {**good["files"], "DG1": "not base64!"}}, "DG1", "base64")
    refused({**good, "files": {**good["files"], "EF.SOD": "@@@@"}}, "EF.SOD", "base64")
    refused({**good, "challenge": "%%%"}, "challenge", "base64")
    refused({**good, "files": {**good["files"], "DG17": good["files"]["DG1"]}}, "files")
    refused({**good, "files": {**good["files"], "EF.CVCA": good["files"]["DG1"]}}, "files")
    refused({**good, "files": {k: v for k, v in good["files"].items() if k != "EF.SOD"}}, "files", "EF.SOD")
    refused({"files": {"EF.SOD": b64(os.urandom(400))}}, "EF.SOD", "not readable")
    refused({"files": {"EF.SOD": b64(b"\x77\x82\x10\x00\x30")}}, "EF.SOD")
    refused({"files": {"EF.SOD": b64(b"")}}, "EF.SOD")
    refused({"files": "EF.SOD"}, "files")
    refused({"files": {"EF.SOD": 12}}, "files")
    refused({**good, "unknown": 1}, "unknown")
    r = api.client.post("/api/v1/cards/verify", content=b"{not json", headers={
        **api.headers(), "Content-Type": "application/json"})
    assert_error(r, 422, "invalid_input")
    assert api.snapshot() == before


@pytest.mark.parametrize("marker, delta, bit, nth, checks", [
    (None, 7, 0, 0, ["data_groups", "consistency"]),  # DG1: the sex M becomes L
    ("06072a8648ce3d0201", 2, 0, 0, ["signature", "chain"]),  # the DSC's id-ecPublicKey: an unknown OID
    ("300a06082a8648ce3d040302", 2, 7, 1, ["chain"]),  # the DSC's signatureAlgorithm OID tag 06 -> 86
], ids=["dg1-sex", "dsc-key-oid", "dsc-algorithm-tag"])
def test_verify_answers_200_for_damage_deep_in_the_asn1(api, marker, delta, bit, nth, checks):
    """Damage that asn1crypto only notices lazily, found by fuzzing: a report, never a 500."""
    card = api.issue(AN)
    files = api.chip_of(card["card_id"])
    if marker is None:
        files[1] = chips.flip(files[1], files[1].index(api.card_row(card["card_id"]).mrz.split("\n")[1].encode())
                              + delta, bit)
    else:
        needle = bytes.fromhex(marker)
        at = files[-1].index(needle)
        for _ in range(nth):
            at = files[-1].index(needle, at + 1)
        files[-1] = chips.flip(files[-1], at + delta, bit)
    r = api.verify(files)
    assert r.status_code == 200, r.text
    assert (r.json()["verdict"], [f["check"] for f in r.json()["failures"]]) == ("invalid", checks)


def test_verify_does_not_disclose_the_register_to_a_forged_chip(api):
    from dinhdanh.ids.lds import dg1, dg13
    from dinhdanh.ids import mrz

    forger = chips.foreign_pki("ec", "VN")
    lines = mrz.build_vn_card(pid=HOA, date_of_birth=dt.date(2000, 1, 1), sex="male",
                              expiry_date=dt.date(2040, 1, 1), full_name="Trần Văn Giả")
    files = {1: dg1.encode(lines), 13: dg13.encode(dg13.VnPersonalData(
        pid=HOA, full_name="Trần Văn Giả", date_of_birth="01/01/2000", sex="Nam"))}
    files[-1] = forger.sign_sod(files)
    assert_error(api.get(f"/api/v1/citizens/{HOA}", "commune"), 404)  # the commune officer may not read Hoa
    r = api.verify(files, "commune")
    assert r.status_code == 200, r.text
    assert r.json()["chain"]["status"] == "untrusted"  # nobody we trust signed it
    assert "Phạm Thị Hoa" not in r.text and "12/11/1993" not in r.text, r.json()["register"]


# ------------------------------------------------------------------------------- public PKI


def test_public_pki_files_need_no_token_and_parse(api):
    r = api.client.get("/api/v1/pki/csca.pem")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-pem-file")
    (csca,) = x509.load_pem_x509_certificates(r.content)
    assert csca.subject.rfc4514_string() == "CN=CSCA VN,O=Bo Cong An,C=VN"
    assert csca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True

    r = api.client.get("/api/v1/pki/master-list")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/pkcs7-mime")
    listed = masterlist.verify(r.content)
    assert [x509.load_der_x509_certificate(d) for d in listed] == [csca]

    r = api.client.get("/api/v1/pki/crl")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/pkix-crl")
    crl = x509.load_der_x509_crl(r.content)
    assert crl.is_signature_valid(csca.public_key()) and len(crl) == 0
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1

    # a revoked Document Signer is on the next CRL
    card = api.issue(AN)
    with api.engine.begin() as conn:
        pki.revoke_key(conn, api.vault, api.card_row(card["card_id"]).signer_id)
        dsc = certs.parse_certificate(conn.execute(sa.select(pki_keys.c.certificate).where(
            pki_keys.c.key_id == api.card_row(card["card_id"]).signer_id)).scalar_one())
    crl = x509.load_der_x509_crl(api.client.get("/api/v1/pki/crl").content)
    assert crl.is_signature_valid(csca.public_key())
    assert [entry.serial_number for entry in crl] == [dsc.serial]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    report = api.verify(api.chip_of(card["card_id"])).json()
    assert report["chain"]["status"] == "invalid" and "revoked" in report["chain"]["reason"]


def test_public_pki_files_before_the_pki_exists_are_404(family):
    client = TestClient(create_app(family), raise_server_exceptions=False)
    for url in ("/api/v1/pki/csca.pem", "/api/v1/pki/master-list", "/api/v1/pki/crl"):
        assert_error(client.get(url), 404, "not_found", "pki")
