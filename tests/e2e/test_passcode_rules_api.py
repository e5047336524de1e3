"""Weak passcodes refused with 422 ``weak_passcode`` (field ``passcode``) wherever a passcode is set,
on SQLite and PostgreSQL: activation in the app (nothing spent, nothing written), enrolment at the
counter (the contract, and the CLI), a change of passcode."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from dinhdanh.eid import auth
from dinhdanh.eid.tables import eid_registrations
from dinhdanh.registry.errors import InvalidInput
from tests.chips import AN, BINH, DUC
from tests.e2e.test_eid_api import api, registration_body  # noqa: F401  (the fixture)
from tests.e2e.test_eid_cli import db, run  # noqa: F401  (the fixture)
from tests.eid_support import PHONES, enroll

# An: born 1985-03-04, PID 001085000001
WEAK = {"same_digit": "777777", "ascending": "345678", "descending": "876543", "wrap_around": "890123",
        "ddmmyy": "040385", "yymmdd": "850304", "mmddyy": "030485", "mmyyyy": "031985", "pid": "000001"}


def test_activation_refuses_each_weak_passcode(api):
    r = api.post("/api/v1/eid/registrations", registration_body(api))
    assert r.status_code == 201, r.text
    code = api.phone(PHONES[AN])
    for rule, passcode in WEAK.items():
        r = api.post("/api/v1/eid/activations", {"pid": AN, "code": code, "passcode": passcode})
        assert r.status_code == 422, (rule, r.text)
        assert (r.json()["error"]["code"], r.json()["error"]["field"]) == ("weak_passcode", "passcode"), rule
    with api.engine.connect() as conn:  # no attempt of the code was spent on them
        assert conn.execute(sa.select(eid_registrations.c.code_attempts)).scalar_one() == 0
    r = api.post("/api/v1/eid/activations", {"pid": AN, "code": code, "passcode": "135790"})
    assert r.status_code == 200, r.text


def test_counter_enrolment_and_change_refuse_weak_passcodes(api):
    for passcode in ("111111", "123456", "654321", "100990", "000005"):  # Đức: 1990-09-10, PID ...000005
        with pytest.raises(InvalidInput) as e:
            enroll(api.engine, api.vault, DUC, level=1, passcode=passcode)
        assert (e.value.code, e.value.field) == ("weak_passcode", "passcode")
    account_id = enroll(api.engine, api.vault, DUC, level=1, passcode="135790")["account_id"]
    with pytest.raises(InvalidInput) as e:
        with api.engine.begin() as conn:
            auth.set_passcode(conn, account_id, "101990")  # DDYYYY of 10/09/1990
    assert e.value.code == "weak_passcode"
    with api.engine.begin() as conn:
        auth.set_passcode(conn, account_id, "246813")


def test_cli_enroll_refuses_a_weak_passcode(db):
    home, url = db
    p = run(home, "eid", "enroll", BINH, "--level", "1", "--passcode", "060587", "--db", url)  # Bình: 1987-05-06
    assert p.returncode == 2, p.stdout + p.stderr  # bad input
    assert "date of birth" in p.stderr and "(passcode)" in p.stderr
    p = run(home, "eid", "enroll", BINH, "--level", "1", "--passcode", "135790", "--db", url)
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "active"
