"""The permission catalogue and roles (officers.permissions) and the Officer's checks, without storage."""

from __future__ import annotations

import pytest

from dinhdanh.officers.permissions import (PERMISSIONS, ROLES, PermissionDenied, SeparationOfDuties, check_roles,
                                           permissions_of, roles_with)
from dinhdanh.officers.service import Officer
from dinhdanh.registry.errors import Forbidden, InvalidInput

OPERATIONAL = {p for p in PERMISSIONS if p.split(".")[0] in ("register", "cards", "eid", "identity", "quality")}


def test_every_permission_is_named_in_both_languages_and_given_by_some_role():
    for name, label in PERMISSIONS.items():
        assert label.vi and label.en and label.vi != label.en, name
        assert roles_with(name), f"no role gives {name}"
    for name, role in ROLES.items():
        assert role.label.vi and role.label.en, name
        assert role.permissions and role.permissions <= set(PERMISSIONS), name


def test_no_role_holds_everything_and_the_administrator_does_no_operational_work():
    assert all(role.permissions != set(PERMISSIONS) for role in ROLES.values())
    assert permissions_of({"administrator"}) == {"officers.admin"}
    assert permissions_of({"auditor"}) == {"audit.read"}
    assert not permissions_of({"administrator", "auditor", "partner_admin"}) & OPERATIONAL


@pytest.mark.parametrize("filer, decider, decision", [
    ("card_officer", "card_approver", "cards.approve"),
    ("eid_officer", "eid_supervisor", "eid.lock_requests.decide"),
])
def test_who_files_and_who_decides_are_different_roles(filer, decider, decision):
    assert decision not in ROLES[filer].permissions and decision in ROLES[decider].permissions


def test_a_registrar_records_life_events_but_touches_no_card():
    registrar = permissions_of({"registrar"})
    assert {"register.read", "register.search", "register.events"} == registrar
    assert not {p for p in registrar if p.startswith("cards.")}


def test_roles_are_checked_and_at_least_one_is_needed():
    assert check_roles("registrar, card_officer") == {"registrar", "card_officer"}
    assert check_roles(["auditor"]) == {"auditor"}
    for bad in ("", " , ", [], None):
        with pytest.raises(InvalidInput) as info:
            check_roles(bad)
        assert (info.value.code, info.value.field) == ("roles_required", "roles")
    for bad in ("registrar,king", ["national"], [1]):
        with pytest.raises(InvalidInput) as info:
            check_roles(bad)
        assert (info.value.code, info.value.field) == ("unknown_role", "roles")


def test_an_officer_can_what_their_roles_give_and_is_refused_naming_the_permission():
    officer = Officer(7, "Cán bộ", "commune", "00070", frozenset({"registrar", "data_steward"}))
    assert officer.permissions == permissions_of({"registrar", "data_steward"})
    assert officer.can("register.events") and officer.can("quality.read") and not officer.can("cards.revoke")
    officer.require("register.read")
    with pytest.raises(PermissionDenied) as info:
        officer.require("cards.revoke")
    assert isinstance(info.value, Forbidden)
    assert (info.value.code, info.value.field, info.value.permission) == ("permission_denied", "permission",
                                                                          "cards.revoke")
    assert "cards.revoke" in info.value.message and "card_officer" in info.value.message
    with pytest.raises(PermissionDenied) as info:
        officer.require("cards.revoke", english=False)
    assert "cards.revoke" in info.value.message and "Cán bộ cấp thẻ căn cước" in info.value.message
    with pytest.raises(ValueError):
        officer.can("cards.everything")  # a typo in a route is found at once, not read as "no"
    assert Officer(1, "Không vai trò", "national", None).permissions == frozenset()  # fail closed


def test_an_administrator_oversees_officers_within_their_area():
    national = Officer(1, "A", "national", None)
    hcmc = Officer(2, "B", "province", "79")
    ben_thanh = Officer(3, "C", "commune", "26743")
    hoan_kiem = Officer(4, "D", "commune", "00070")
    assert national.oversees(hcmc) and national.oversees(hoan_kiem)
    assert hcmc.oversees(ben_thanh) and not hcmc.oversees(hoan_kiem) and not hcmc.oversees(national)
    assert ben_thanh.oversees(Officer(5, "E", "commune", "26743")) and not ben_thanh.oversees(hcmc)


def test_separation_of_duties_is_a_403():
    assert issubclass(SeparationOfDuties, Forbidden) and SeparationOfDuties.code == "separation_of_duties"
