"""The partner registry (exchange.partners), its CLI and the in-process rate limiter, on SQLite
and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from dinhdanh.exchange import limits, partners
from dinhdanh.oidc import clients
from dinhdanh.registry.errors import Forbidden, InvalidInput, NotFound, RuleViolation
from tests.e2e.test_cli import Cli, assert_refused

NEXT_YEAR = dt.date.today() + dt.timedelta(days=365)


def add(conn, **kw):
    args = dict(name="Nhà mạng A", kind="telco", operations="verify,batch", fields="full_name,date_of_birth",
                actor="test")
    return partners.add_partner(conn, **{**args, **kw})


def test_add_approve_suspend(engine):
    with engine.begin() as conn:
        made = add(conn, rate_per_minute=120)
        assert made["state"] == "pending" and made["client_secret"] and made["partner_id"] > 0
        assert made["operations"] == ["verify", "batch"] and made["fields"] == ["full_name", "date_of_birth"]
        assert made["purposes"] == ["subscriber_standardisation"] and made["rate_per_minute"] == 120
        client = clients.load_client(conn, made["client_id"])
        assert client.status == "pending" and client.grant_types == ("client_credentials",)
        assert client.scopes == ("dinhdanh.verify",)
        with pytest.raises(Forbidden, match="pending"):
            partners.active_partner(conn, made["client_id"], "verify")
        approved = partners.approve_partner(conn, made["client_id"], agreement="HĐ-01/2025",
                                            legal_basis="Nghị định 69/2024/NĐ-CP", expires=NEXT_YEAR,
                                            security_level=3, actor="test")
        assert approved["state"] == "active" and approved["agreement_expires"] == NEXT_YEAR.isoformat()
        assert clients.load_client(conn, made["client_id"]).approved
        assert partners.active_partner(conn, made["client_id"], "verify").partner_id == made["partner_id"]
        with pytest.raises(Forbidden, match="kyc"):
            partners.active_partner(conn, made["client_id"], "kyc")
        with pytest.raises(Forbidden, match="expired"):
            partners.active_partner(conn, made["client_id"], "verify", today=NEXT_YEAR + dt.timedelta(days=1))
        assert partners.suspend_partner(conn, made["client_id"], actor="test")["state"] == "suspended"
        with pytest.raises(Forbidden, match="suspended"):
            partners.active_partner(conn, made["client_id"], "batch")
        assert [p["client_id"] for p in partners.list_partners(conn)] == [made["client_id"]]
        with pytest.raises(Forbidden, match="not a registered partner"):
            partners.active_partner(conn, "nobody", "verify")


def test_refused_registrations(engine):
    with engine.begin() as conn:
        for kw, field in ((dict(kind="casino"), "kind"), (dict(operations="verify,spy"), "operations"),
                          (dict(operations=""), "operations"), (dict(fields="full_name,religion"), "fields"),
                          (dict(purposes="marketing"), "purposes"), (dict(rate_per_minute=0), "rate"),
                          (dict(name=""), "name")):
            with pytest.raises(InvalidInput) as caught:
                add(conn, **kw)
            assert caught.value.field == field, kw
        made = add(conn, kind="bank", purposes="customer_verification,identity_verification")
        assert made["purposes"] == ["customer_verification", "identity_verification"]
        for kw, error in ((dict(expires=dt.date.today()), InvalidInput), (dict(legal_basis=" "), InvalidInput),
                          (dict(security_level=2), RuleViolation)):
            args = dict(agreement="HĐ", legal_basis="Luật", expires=NEXT_YEAR, security_level=3, actor="t")
            with pytest.raises(error):
                partners.approve_partner(conn, made["client_id"], **{**args, **kw})
        assert partners.load(conn, made["client_id"]).state == "pending"
        with pytest.raises(NotFound):
            partners.approve_partner(conn, "nobody", agreement="HĐ", legal_basis="Luật", expires=NEXT_YEAR,
                                     security_level=3, actor="t")


def test_token_bucket():
    now = [0.0]
    limiter = limits.MemoryLimiter(clock=lambda: now[0])
    assert [limiter.take("a", 60) for _ in range(60)] == [0.0] * 60
    wait = limiter.take("a", 60)
    assert 0.9 < wait <= 1.0 and limits.retry_after(wait) == "1"
    assert limiter.take("b", 60) == 0.0  # its own bucket
    now[0] += 2.0  # two tokens back
    assert limiter.take("a", 60) == 0.0 and limiter.take("a", 60) == 0.0 and limiter.take("a", 60) > 0
    now[0] += 3600  # never more than a minute's worth
    assert sum(limiter.take("a", 60) == 0.0 for _ in range(100)) == 60


def test_partner_cli(tmp_path):
    cli = Cli(tmp_path)
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    made = cli.json("partner", "add", "--name", "Ngân hàng B", "--kind", "bank", "--operations", "verify,kyc",
                    "--fields", "full_name,date_of_birth,card", "--rate", "30", "--db", db)
    assert made["state"] == "pending" and made["client_secret"] and made["client_id"].startswith("dd-")
    assert made["purposes"] == ["customer_verification"] and made["rate_per_minute"] == 30
    assert_refused(cli("partner", "add", "--name", "X", "--kind", "bank", "--operations", "fly",
                       "--fields", "full_name", "--db", db), 2, "operations")
    assert_refused(cli("partner", "approve", made["client_id"], "--agreement", "HĐ-7", "--legal-basis", "Luật",
                       "--expires", "2020-13-01", "--security-level", "3", "--db", db), 2, "expires")
    assert_refused(cli("partner", "approve", made["client_id"], "--agreement", "HĐ-7", "--legal-basis", "Luật",
                       "--expires", NEXT_YEAR.isoformat(), "--security-level", "2", "--db", db), 1, "level")
    approved = cli.json("partner", "approve", made["client_id"], "--agreement", "HĐ-7", "--legal-basis",
                        "Nghị định 69/2024", "--expires", NEXT_YEAR.isoformat(), "--security-level", "3", "--db", db)
    assert approved["state"] == "active" and approved["security_level"] == 3
    assert cli.json("client", "show", made["client_id"], "--db", db)["status"] == "approved"
    assert cli.json("partner", "suspend", made["client_id"], "--db", db)["state"] == "suspended"
    listed = cli.json("partner", "list", "--db", db)
    assert [(p["client_id"], p["state"]) for p in listed] == [(made["client_id"], "suspended")]
    assert_refused(cli("partner", "suspend", "nobody", "--db", db), 1, "partner")
