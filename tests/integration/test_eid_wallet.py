"""The document wallet (checked with the issuing registry through a connector), the electronic identity
card at level 2, and the identity QR (60 s, once), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from dinhdanh.cards import pki
from dinhdanh.eid import locks, wallet
from dinhdanh.eid.tables import identity_qr_tokens, source_documents, wallet_documents
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from tests import chips
from tests.chips import AN, BINH
from tests.eid_support import enroll, issue

@pytest.fixture
def vault():
    return chips.new_vault()


@pytest.fixture
def reg(family, vault):
    chips.reset_caches()
    with family.begin() as conn:
        pki.init_pki(conn, vault)
        assert wallet.seed_source_documents(conn) > 0
        assert wallet.seed_source_documents(conn) == 0  # again: nothing new
    issue(family, vault, AN)
    yield family
    chips.reset_caches()


def documents(engine, pid):
    with engine.connect() as conn:
        return {r.kind: r.number for r in conn.execute(sa.select(source_documents)
                                                       .where(source_documents.c.holder_pid == pid))}


def test_documents_join_the_wallet_after_the_registry_confirms_them(reg, vault):
    account_id = enroll(reg, vault, AN, level=2)["account_id"]
    mine, binh = documents(reg, AN), documents(reg, BINH)
    assert {"health_insurance", "social_insurance"} <= set(mine)
    with reg.begin() as conn:
        added = wallet.add_document(conn, account_id, "health_insurance", mine["health_insurance"].lower())
        assert added["number"] == mine["health_insurance"] and added["title"] == "Thẻ bảo hiểm y tế"
        with pytest.raises(Conflict):
            wallet.add_document(conn, account_id, "health_insurance", mine["health_insurance"])
        with pytest.raises(RuleViolation) as e:
            wallet.add_document(conn, account_id, "health_insurance", binh["health_insurance"])
        assert e.value.code == "document_not_holders"
        with pytest.raises(NotFound) as e:
            wallet.add_document(conn, account_id, "driving_licence", "NOPE123")
        assert e.value.code == "document_not_found"
        with pytest.raises(InvalidInput):
            wallet.add_document(conn, account_id, "passport", "X1")
        conn.execute(source_documents.update().where(source_documents.c.number == mine["social_insurance"])
                     .values(status="revoked"))
        with pytest.raises(RuleViolation) as e:
            wallet.add_document(conn, account_id, "social_insurance", mine["social_insurance"])
        assert e.value.code == "document_revoked"
        view = wallet.wallet(conn, account_id)
    assert [d["kind"] for d in view["documents"]] == ["health_insurance"]
    card = view["identity_card"]
    assert card["card_number"] == AN and card["full_name"] == "Nguyễn Văn An" and card["status"] == "issued"
    assert card["date_of_birth"] == "04/03/1985"


def test_level1_has_no_identity_card_and_a_locked_account_adds_nothing(reg, vault):
    account_id = enroll(reg, vault, BINH)["account_id"]
    with reg.begin() as conn:
        assert wallet.wallet(conn, account_id) == {"identity_card": None, "documents": []}
        locks.lock(conn, account_id, "breach", source="officer", actor="officer:1", reason="r")
        with pytest.raises(RuleViolation) as e:
            wallet.add_document(conn, account_id, "health_insurance", documents(reg, BINH)["health_insurance"])
        assert e.value.code == "account_not_active"
        with pytest.raises(RuleViolation):
            wallet.issue_identity_qr(conn, account_id)
    with reg.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(wallet_documents)).scalar_one() == 0


def test_identity_qr_once_within_60_seconds(reg, vault):
    level2 = enroll(reg, vault, AN, level=2)["account_id"]
    level1 = enroll(reg, vault, BINH)["account_id"]
    with reg.begin() as conn:
        qr = wallet.issue_identity_qr(conn, level2, level=2)
        assert qr["token"].startswith("qr_") and qr["expires_in"] == 60
        stored = conn.execute(sa.select(identity_qr_tokens.c.token_hash)).scalar_one()
        assert qr["token"] not in stored
        seen, person_id = wallet.verify_identity_qr(conn, qr["token"], actor="officer:5")
        assert seen["level"] == 2 and seen["pid"] == AN and seen["identity_card"]["card_number"] == AN
        assert person_id is not None
        with pytest.raises(RuleViolation) as e:
            wallet.verify_identity_qr(conn, qr["token"], actor="officer:5")
        assert e.value.code == "qr_used"
        now = dt.datetime.now(dt.UTC)
        late = wallet.issue_identity_qr(conn, level2, level=1, now=now)
        with pytest.raises(RuleViolation) as e:
            wallet.verify_identity_qr(conn, late["token"], actor="officer:5", now=now + dt.timedelta(seconds=61))
        assert e.value.code == "qr_expired"
        with pytest.raises(RuleViolation) as e:
            wallet.verify_identity_qr(conn, "qr_unknown", actor="officer:5")
        assert e.value.code == "qr_invalid"
        # a level-1 login shows level 1
        shown, _ = wallet.verify_identity_qr(conn, wallet.issue_identity_qr(conn, level2, level=1)["token"],
                                             actor="officer:5")
        assert shown["level"] == 1 and "identity_card" not in shown
        basic, _ = wallet.verify_identity_qr(conn, wallet.issue_identity_qr(conn, level1, level=2)["token"],
                                             actor="officer:5")
        assert basic["level"] == 1 and basic["pid"] == BINH  # never above the account's level
