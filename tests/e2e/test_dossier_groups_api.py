"""A linked group over HTTP on SQLite and PostgreSQL: a citizen logged in through our provider
files the birth group (Decree 63/2024) once and gets one sub-dossier per agency; the residence
sub-dossier waits for the birth (409 ``waiting_for_linked``) until the commune's officer approves
it; the province's social insurance officer decides the card; the group is completed. An invalid
choice of procedures is 422 naming the field; an action on the group itself is 409."""

from __future__ import annotations

from dinhdanh.officers.service import add_officer
from tests.e2e.test_dossiers_api import DOSSIERS, SCOPE, bearer, error_of, op  # noqa: F401  (op: the fixture)
from tests.integration.test_dossier_groups import BIRTH_GROUP, birth_form
from tests.oidc_support import AN


def test_the_birth_group_over_http(op):
    http = op.http
    with op.engine.begin() as conn:
        _, commune = add_officer(conn, "Cán bộ phường Hoàn Kiếm", "commune", "00070", roles=["dossier_officer"])
        _, province = add_officer(conn, "Cán bộ Bảo hiểm xã hội Hà Nội", "province", "01",
                                  roles=["dossier_officer"])
    officer, insurance = bearer(commune), bearer(province)
    an = bearer(op.tokens(scope=SCOPE, who=AN)["access_token"])

    too_few = birth_form(["birth_registration", "permanent_residence"])
    body = error_of(http.post(DOSSIERS, json={"service": BIRTH_GROUP, "data": too_few}, headers=an), 422,
                    "invalid_form")
    assert body["field"].startswith("procedures"), body
    missing = birth_form(["birth_registration", "permanent_residence", "id_card"])
    error_of(http.post(DOSSIERS, json={"service": BIRTH_GROUP, "data": missing}, headers=an), 422,
             "mandatory_procedure_missing", "procedures")
    r = http.post(DOSSIERS, json={"service": BIRTH_GROUP, "data": birth_form()}, headers=an)
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["status"] == "in_progress" and len(filed["children"]) == 3
    kids = {c["procedure"]: c["dossier_id"] for c in filed["children"]}
    group = http.get(f"{DOSSIERS}/{filed['dossier_id']}", headers=an).json()
    assert group["kind"] == "group" and [c["procedure"] for c in group["children"]] == list(kids)
    assert len({c["agency"]["code"] for c in group["children"]}) == 3

    def act(dossier_id, action, who=officer, **extra):
        return http.post(f"{DOSSIERS}/{dossier_id}/actions", json={"action": action, **extra}, headers=who)

    error_of(act(filed["dossier_id"], "receive"), 409, "group_dossier", "dossier_id")
    error_of(act(kids["permanent_residence"], "receive"), 409, "waiting_for_linked", "action")
    assert act(kids["birth_registration"], "receive").json()["status"] == "received"
    assert act(kids["birth_registration"], "approve").json()["status"] == "approved"
    for key, who in (("permanent_residence", officer), ("health_insurance_card", insurance)):
        assert act(kids[key], "receive", who).status_code == 200
        decided = act(kids[key], "approve", who)
        assert decided.status_code == 200 and decided.json()["result_code"], decided.text
    group = http.get(f"{DOSSIERS}/{filed['dossier_id']}", headers=an).json()
    assert group["status"] == "completed" and {c["status"] for c in group["children"]} == {"approved"}
    mine = http.get(DOSSIERS, headers=an).json()["items"]
    assert {d["code"] for d in mine} == {filed["code"], *(c["code"] for c in filed["children"])}
    # a decided group cannot be withdrawn: 409 naming the group's state (in Vietnamese too), never a 500
    for lang, words in (("vi", "Đã giải quyết tất cả các thủ tục liên thông"), ("en", "completed")):
        late = http.post(f"{DOSSIERS}/{filed['dossier_id']}/withdraw", headers={**an, "Accept-Language": lang})
        body = error_of(late, 409, "invalid_transition", "action")
        assert body["state"] == "completed" and words in body["message"], body


def test_officers_decide_their_own_agencys_dossiers(op):
    """The commune's people's committee decides the birth, the commune police the residence: an
    officer of one agency does not see (404, like an unknown id) or list the other's sub-dossier in
    the same commune; an officer without an agency (the one-stop shop) sees both. An agency of
    another level or unknown is refused when the officer is made (422 naming ``agency``)."""
    import pytest

    from dinhdanh.registry.errors import InvalidInput

    http = op.http
    with op.engine.begin() as conn:
        _, committee = add_officer(conn, "Cán bộ tư pháp - hộ tịch", "commune", "00070", roles=["dossier_officer"],
                                   agency="ubnd-xa")
        _, police = add_officer(conn, "Cán bộ Công an phường", "commune", "00070", roles=["dossier_officer"],
                                agency="cong-an-xa")
        _, desk = add_officer(conn, "Bộ phận một cửa", "commune", "00070", roles=["dossier_officer"])
        for agency, error in (("bhxh", "province"), ("so-tu-phap", "province"), ("nowhere", "No agency")):
            with pytest.raises(InvalidInput) as refused:
                add_officer(conn, "Sai cơ quan", "commune", "00070", roles=["dossier_officer"], agency=agency)
            assert refused.value.field == "agency" and error in refused.value.message
    an = bearer(op.tokens(scope=SCOPE, who=AN)["access_token"])
    filed = http.post(DOSSIERS, json={"service": BIRTH_GROUP, "data": birth_form()}, headers=an).json()
    kids = {c["procedure"]: c["dossier_id"] for c in filed["children"]}
    birth, residence = kids["birth_registration"], kids["permanent_residence"]

    def worklist(token):
        return {d["dossier_id"] for d in http.get(DOSSIERS, headers=bearer(token)).json()["items"]}

    assert birth in worklist(committee) and residence not in worklist(committee)
    assert residence in worklist(police) and birth not in worklist(police)
    assert {birth, residence} <= worklist(desk)
    error_of(http.get(f"{DOSSIERS}/{birth}", headers=bearer(police)), 404, "dossier_not_found", "dossier_id")
    error_of(http.post(f"{DOSSIERS}/{birth}/actions", json={"action": "receive"}, headers=bearer(police)), 404,
             "dossier_not_found", "dossier_id")
    received = http.post(f"{DOSSIERS}/{birth}/actions", json={"action": "receive"}, headers=bearer(committee))
    assert received.status_code == 200 and received.json()["status"] == "received", received.text
