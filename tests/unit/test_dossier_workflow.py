"""The dossier's state machine and what is pure around it: transitions, refusals, codes, routing."""

from __future__ import annotations

import pytest

from dinhdanh.dossiers import catalogue, workflow
from dinhdanh.dossiers.service import PLACE_FIELDS, document_agency
from dinhdanh.dossiers.tables import ACTIONS, STATUSES
from dinhdanh.officers.permissions import PERMISSIONS, ROLES, permissions_of
from dinhdanh.registry.errors import Conflict, InvalidInput

EXPECTED = {  # (action, from) -> to; every pair not listed is refused
    ("receive", "submitted"): "received",
    ("request_supplement", "received"): "supplement_requested",
    ("supplement", "supplement_requested"): "received",
    ("approve", "received"): "approved",
    ("refuse", "submitted"): "refused",
    ("refuse", "received"): "refused",
    ("refuse", "supplement_requested"): "refused",
    ("withdraw", "submitted"): "withdrawn",
    ("withdraw", "received"): "withdrawn",
    ("withdraw", "supplement_requested"): "withdrawn",
    ("extend", "received"): "received",
}


def test_every_action_and_state_pair():
    for action in workflow.TRANSITIONS:
        for state in workflow.STATES:
            if (action, state) in EXPECTED:
                assert workflow.target(action, state) == EXPECTED[(action, state)]
            else:
                with pytest.raises(workflow.InvalidTransition) as refused:
                    workflow.target(action, state)
                assert isinstance(refused.value, Conflict)  # 409
                assert refused.value.code == "invalid_transition" and refused.value.field == "action"
                assert refused.value.state == state and repr(state) in refused.value.message


def test_decided_dossiers_never_move_and_the_tables_know_every_state_and_action():
    for state in workflow.FINAL:
        assert not any(workflow.allowed(a, state) for a in workflow.TRANSITIONS)
    assert set(workflow.STATES) == set(STATUSES) == set(workflow.LABELS)
    assert set(workflow.TRANSITIONS) | {"file"} == set(ACTIONS)
    assert set(workflow.OFFICER_ACTIONS) | set(workflow.CITIZEN_ACTIONS) == set(workflow.TRANSITIONS)


def test_check_action():
    assert workflow.check_action("approve", workflow.OFFICER_ACTIONS) == "approve"
    for bad in ("supplement", "APPROVE", None, 1):
        with pytest.raises(InvalidInput) as refused:
            workflow.check_action(bad, workflow.OFFICER_ACTIONS)
        assert refused.value.field == "action"


def test_the_dossier_officer_role():
    assert ROLES["dossier_officer"].permissions == {"dossiers.read", "dossiers.decide"}
    assert ROLES["dossier_officer"].label.vi == "Cán bộ tiếp nhận, giải quyết hồ sơ"
    assert PERMISSIONS["dossiers.decide"].vi and PERMISSIONS["dossiers.read"].en
    assert "dossiers.decide" not in permissions_of({"registrar", "card_approver", "administrator"})


def test_documents_are_signed_by_the_agency_at_the_place():
    from dinhdanh.documents.ca import check_agency

    for version in catalogue.services():
        agency = check_agency(document_agency(version, "01", "00070"))
        assert len(agency.code) <= 30
    temporary = catalogue.service("1.004194")
    assert document_agency(temporary, "01", "00070").code == "CONG-AN-XA.00070"
    assert "Phường Hoàn Kiếm" in document_agency(temporary, "01", "00070").name
    assert PLACE_FIELDS[0] == "new_address"
