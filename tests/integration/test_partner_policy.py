"""Partner policy changes (``partners.update_policy``) on SQLite and PostgreSQL, their record in
``partner_events``, and ``dinhdanh partner policy|show|add`` in a subprocess."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dinhdanh.exchange import partners
from dinhdanh.exchange.tables import partner_events
from dinhdanh.registry.area import NATIONAL, Area
from dinhdanh.registry.errors import InvalidInput, NotFound
from tests.e2e.test_cli import Cli, assert_refused
from tests.oidc_support import add_partner


def policy(engine, client_id: str, **changes) -> dict:
    with engine.begin() as conn:
        return partners.update_policy(conn, client_id, actor="cli:tester", **changes)


def test_only_what_is_given_changes_and_each_change_is_recorded(engine):
    telco = add_partner(engine, fields=("full_name", "date_of_birth"))
    before = {k: telco[k] for k in partners.POLICY}
    assert before["quota_per_day"] is None and before["area_code"] is None and before["kyc_consent_required"] is True

    after = policy(engine, telco["client_id"], quota_per_day=1000, area_code="79")
    assert after["quota_per_day"] == 1000 and after["area_code"] == "79"
    assert {k: after[k] for k in partners.POLICY if k not in ("quota_per_day", "area_code")} == \
        {k: before[k] for k in partners.POLICY if k not in ("quota_per_day", "area_code")}

    after = policy(engine, telco["client_id"], operations="verify,kyc", fields=["full_name", "hometown"],
                   purposes=["identity_verification", "subscriber_standardisation"], rate_per_minute=30,
                   kyc_consent_required=False, quota_per_day=None, area_code="national")
    assert after["operations"] == ["verify", "kyc"] and after["fields"] == ["full_name", "hometown"]
    assert after["purposes"] == ["identity_verification", "subscriber_standardisation"]
    assert after["rate_per_minute"] == 30 and after["quota_per_day"] is None and after["area_code"] is None
    assert after["kyc_consent_required"] is False

    # the same values again: nothing changes, nothing is recorded
    policy(engine, telco["client_id"], rate_per_minute=30)

    with engine.connect() as conn:
        history = partners.partner_history(conn, telco["client_id"])
        shown = partners.show_partner(conn, telco["client_id"])
        rows = conn.execute(sa.select(partner_events.c.kind)).scalars().all()
    assert [h["kind"] for h in history] == ["added", "approved", "policy", "policy"] == rows
    assert history[2]["changes"] == {"quota_per_day": {"old": None, "new": 1000},
                                     "area_code": {"old": None, "new": "79"}}
    assert history[2]["actor"] == "cli:tester" and history[0]["actor"] == "test"
    assert history[3]["changes"]["quota_per_day"] == {"old": 1000, "new": None}
    assert history[3]["changes"]["fields"] == {"old": ["full_name", "date_of_birth"], "new": ["full_name", "hometown"]}
    assert "rate_per_minute" in history[3]["changes"] and "state" not in history[3]["changes"]
    assert shown["history"] == history and shown["client_id"] == telco["client_id"]


BAD_CHANGES = [
    ({"operations": "verify,teleport"}, "operations"),
    ({"operations": []}, "operations"),
    ({"fields": "full_name,salary"}, "fields"),
    ({"fields": ""}, "fields"),
    ({"purposes": ["marketing"]}, "purposes"),
    ({"purposes": []}, "purposes"),
    ({"rate_per_minute": 0}, "rate"),
    ({"rate_per_minute": True}, "rate"),
    ({"quota_per_day": 0}, "quota"),
    ({"quota_per_day": "10"}, "quota"),
    ({"area_code": "99"}, "area"),  # no such province
    ({"area_code": "7"}, "area"),
    ({"area_code": "0007"}, "area"),
    ({"area_code": "99999"}, "area"),
    ({"kyc_consent_required": "yes"}, "kyc_consent"),
    ({}, "policy"),
]


def test_bad_policy_changes_are_refused_and_change_nothing(engine):
    telco = add_partner(engine)
    with engine.connect() as conn:
        before = partners.view(partners.load(conn, telco["client_id"]))
    for changes, field in BAD_CHANGES:
        with pytest.raises(InvalidInput) as refused:
            policy(engine, telco["client_id"], **changes)
        assert refused.value.field == field, changes
    with engine.connect() as conn:
        assert partners.view(partners.load(conn, telco["client_id"])) == before
        assert len(partners.partner_history(conn, telco["client_id"])) == 2  # added, approved


def test_unknown_partner(engine):
    with pytest.raises(NotFound):
        policy(engine, "nobody", rate_per_minute=5)


def test_add_with_quota_area_and_the_area_served(engine):
    with engine.begin() as conn:
        made = partners.add_partner(conn, name="UBND phường", kind="locality", operations="kyc", fields="full_name",
                                    quota_per_day=50, area_code="00070", kyc_consent_required=False, actor="t")
        assert made["quota_per_day"] == 50 and made["area_code"] == "00070" and not made["kyc_consent_required"]
        assert partners.area_of(partners.load(conn, made["client_id"])) == Area(commune="00070")
        province = partners.add_partner(conn, name="Sở", kind="locality", operations="kyc", fields="sex",
                                        area_code="79", actor="t")
        assert partners.area_of(partners.load(conn, province["client_id"])) == Area(province="79")
        national = partners.add_partner(conn, name="Bộ", kind="ministry", operations="kyc", fields="sex", actor="t")
        assert partners.area_of(partners.load(conn, national["client_id"])) == NATIONAL
        with pytest.raises(InvalidInput) as refused:
            partners.add_partner(conn, name="X", kind="bank", operations="kyc", fields="sex", quota_per_day=-1,
                                 actor="t")
        assert refused.value.field == "quota"


def test_partner_policy_cli(tmp_path):
    cli = Cli(tmp_path)
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    made = cli.json("partner", "add", "--name", "Ngân hàng A", "--kind", "bank", "--operations", "verify,kyc",
                    "--fields", "full_name,date_of_birth,nationality", "--quota", "500", "--area", "79", "--db", db)
    client_id = made["client_id"]
    assert made["quota_per_day"] == 500 and made["area_code"] == "79" and made["kyc_consent_required"] is True

    shown = cli.json("partner", "policy", client_id, "--rate", "120", "--quota", "none", "--area", "national",
                     "--kyc-consent", "not-required", "--fields", "full_name,hometown", "--db", db)
    assert shown["rate_per_minute"] == 120 and shown["quota_per_day"] is None and shown["area_code"] is None
    assert shown["kyc_consent_required"] is False and shown["fields"] == ["full_name", "hometown"]
    assert shown["operations"] == ["verify", "kyc"]  # not given: unchanged
    shown = cli.json("partner", "policy", client_id, "--kyc-consent", "required", "--purposes",
                     "identity_verification", "--operations", "kyc", "--db", db)
    assert shown["kyc_consent_required"] is True and shown["purposes"] == ["identity_verification"]

    full = cli.json("partner", "show", client_id, "--db", db)
    assert [h["kind"] for h in full["history"]] == ["added", "policy", "policy"]
    assert full["history"][1]["changes"]["quota_per_day"] == {"old": 500, "new": None}
    assert full["history"][1]["actor"].startswith("cli:")

    # bad arguments: exit 2, the option named, nothing changed
    assert_refused(cli("partner", "policy", client_id, "--quota", "lots", "--db", db), 2, "--quota")
    assert_refused(cli("partner", "policy", client_id, "--area", "123", "--db", db), 2, "area")
    assert_refused(cli("partner", "policy", client_id, "--fields", "salary", "--db", db), 2, "fields", "salary")
    assert_refused(cli("partner", "policy", client_id, "--db", db), 2, "--quota")
    assert_refused(cli("partner", "add", "--name", "B", "--kind", "bank", "--operations", "kyc", "--fields",
                       "sex", "--quota", "x", "--db", db), 2, "--quota")
    p = cli("partner", "policy", client_id, "--kyc-consent", "maybe", "--db", db)
    assert p.returncode == 2 and "--kyc-consent" in p.stderr and "Traceback" not in p.stderr
    assert_refused(cli("partner", "policy", "nobody", "--rate", "5", "--db", db), 1, "client id")
    assert cli.json("partner", "show", client_id, "--db", db) == full
