"""The passport register on SQLite and PostgreSQL: issue with and without a chip, the TD3 MRZ, the
chip's passive authentication against the national CSCA (and its failure when a data group is
altered or the CSCA is another), the rules of an issue (unknown or dead person, chip under 14, the
cases first / expired / lost / damaged), revocation, the person's history, the dossier approval's
effect, and numbers that stay distinct under concurrent issues.

The register is FAMILY (tests/support.py) plus a few more adults; the PKI is made per test.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from dinhdanh.cards import pki
from dinhdanh.dossiers import effects, service as dossier_service
from dinhdanh.dossiers.tables import dossiers
from dinhdanh.ids import mrz
from dinhdanh.ids.lds import aa, dg1
from dinhdanh.passports import numbers, production, service
from dinhdanh.passports.tables import passport_counters, passports
from dinhdanh.registry import commands as cmd
from dinhdanh.registry import events as ev
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import history
from dinhdanh.registry.tables import persons
from dinhdanh.store.outbox import outbox
from dinhdanh.store.unit_of_work import UnitOfWork
from tests import chips
from tests.chips import AN, BINH, CHAU, DUC, DUNG, GIANG, HOA
from tests.support import FAMILY, schema_drift, write_people

OFFICER = ev.Actor("officer:passports")
HCMC_OFFICER = ev.Actor("officer:hcmc", Area(province="79"))
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
# more adults, for eight concurrent issues to eight people
MORE = [(f"0010{80 + i:02d}0100{i:02d}", name, f"19{80 + i}-02-0{i + 1}", "male" if i % 2 else "female", "01",
         "00070", f"01000001{i:02d}", "head", "", "", "", "single")
        for i, name in enumerate(["Vũ Thị Lan", "Đỗ Văn Minh", "Bùi Thị Ngọc", "Đặng Văn Phúc"])]


@pytest.fixture(autouse=True)
def _fresh_caches():
    chips.reset_caches()
    yield
    chips.reset_caches()


@pytest.fixture
def vault():
    return chips.new_vault()


@pytest.fixture
def reg(engine, tmp_path, vault):
    """FAMILY and MORE with the national PKI."""
    from dinhdanh.population.importer import import_population

    report = import_population(engine, write_people(tmp_path / "people.csv", FAMILY + MORE))
    assert report.loaded == len(FAMILY) + len(MORE), report
    with engine.begin() as conn:
        pki.init_pki(conn, vault)
    return engine


def issue(engine, vault, pid, *, kind="first", chip=True, actor=OFFICER, **kw) -> dict:
    with UnitOfWork(engine).begin() as conn:
        return service.issue_passport(conn, vault, actor, pid, kind=kind, chip=chip, now=kw.pop("now", NOW), **kw)


def row_of(engine, number: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(passports).where(passports.c.number == number)).one()


def refused(engine, vault, error, code, field, pid, **kw):
    with pytest.raises(error) as info:
        issue(engine, vault, pid, **kw)
    assert (info.value.code, info.value.field) == (code, field), info.value.message
    return info.value


def record(engine, kind, **fields):
    with engine.begin() as conn:
        return ev.record_event(conn, chips.NATIONAL, kind, cmd.EVENT_KINDS[kind].model_validate(fields))


def cscas(engine) -> list[bytes]:
    with engine.connect() as conn:
        return pki.csca_certificates(conn)


def test_the_migration_matches_the_tables(engine):
    assert schema_drift(engine, "passports", "passport_counters") == []


def test_a_passport_with_a_chip_has_a_td3_mrz_and_a_chip_that_verifies_against_the_csca(reg, vault):
    view = issue(reg, vault, AN, dossier_code="G01.000-261206-0001")
    issue_date = NOW.astimezone(dt.timezone(dt.timedelta(hours=7))).date()
    assert view["number"] == "P0000001" and numbers.is_valid(view["number"])
    assert (view["status"], view["type"], view["chip"], view["kind"]) == ("issued", "P", True, "first")
    assert view["issue_date"] == issue_date.isoformat()
    assert view["expiry_date"] == issue_date.replace(year=issue_date.year + 10).isoformat()  # 14 or more: 10 years
    assert view["printed"]["full_name"] == "Nguyễn Văn An" and view["printed"]["sex"] == "Nam"
    # the MRZ: TD3, P<VNM, the number, the PID as personal number, every check digit right
    parsed = mrz.validate(view["mrz"])
    assert (parsed.format, parsed.document_code, parsed.issuing_state, parsed.nationality) == ("TD3", "P", "VNM", "VNM")
    assert (parsed.document_number, parsed.optional_data, parsed.surname, parsed.given_names) == \
        ("P0000001", AN, "NGUYEN", "VAN AN")
    assert (parsed.date_of_birth, parsed.sex, parsed.expiry_date) == \
        ("850304", "M", dt.date.fromisoformat(view["expiry_date"]).strftime("%y%m%d"))
    row = row_of(reg, view["number"])
    files = service.chip_files(row, vault)
    assert list(dg1.decode(files["DG1"])) == view["mrz"]
    assert row.dg2 != files["DG2"] and files["DG2"] not in row.dg2  # the face is sealed at rest
    report = service.verify_chip(files, cscas(reg))
    assert (report["verdict"], report["chain"]["status"], report["failures"]) == ("valid", "trusted", [])
    assert report["data_groups"] == {"DG1": "match", "DG2": "match", "DG14": "match", "DG15": "match"}
    assert (report["document"]["status"], report["document"]["document_number"]) == ("passport", "P0000001")
    # Active Authentication with the chip's key, as a reader challenges it
    key = serialization.load_der_private_key(vault.open(row.chip_key, "chip-key"), password=None)
    challenge = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    done = service.verify_chip(files, cscas(reg), challenge=challenge, response=aa.sign(key, challenge))
    assert done["active_authentication"]["status"] == "passed" and done["verdict"] == "valid"
    forged = service.verify_chip(files, cscas(reg), challenge=challenge, response=aa.sign(key, b"other!!!"))
    assert forged["verdict"] == "invalid" and "active_authentication" in chips.checks(forged)
    # the SOD was signed by the national Document Signer, and the use is in the key-use log
    with reg.connect() as conn:
        signer = conn.execute(sa.select(pki.pki_keys).where(pki.pki_keys.c.key_id == row.signer_id)).one()
        uses = [u["purpose"] for u in pki.key_uses(conn, row.signer_id)]
        status = service.verify_passport(conn, files)
    assert signer.role == "dsc" and uses == ["sign_sod"]
    assert (status["verdict"], status["register"]["passport"], status["register"]["number"]) == \
        ("valid", "current", "P0000001")


def test_an_altered_data_group_or_another_csca_fails_passive_authentication(reg, vault):
    row = row_of(reg, issue(reg, vault, BINH)["number"])
    files = service.chip_files(row, vault)
    # DG1 rewritten with another expiry date (a valid MRZ: only the SOD's hash can tell)
    lines = list(dg1.decode(files["DG1"]))
    other = mrz.build_td3(document_code="P", issuing_state="VNM", document_number=row.number,
                          date_of_birth="870506", sex="F", expiry_date="491231", nationality="VNM",
                          surname="Tran", given_names="Thi Binh", personal_number=BINH)
    assert list(other) != lines and mrz.is_valid(other)
    report = service.verify_chip({**files, "DG1": dg1.encode(other)}, cscas(reg))
    assert report["verdict"] == "invalid" and report["data_groups"]["DG1"] == "mismatch"
    assert chips.checks(report) == ["data_groups"]
    # one byte of the face changed
    face = bytearray(files["DG2"])
    face[-10] ^= 0x01
    report = service.verify_chip({**files, "DG2": bytes(face)}, cscas(reg))
    assert report["data_groups"]["DG2"] == "mismatch" and report["verdict"] == "invalid"
    # a DG the SOD does not list
    report = service.verify_chip({**files, "DG13": b"\x6d\x00"}, cscas(reg))
    assert report["data_groups"]["DG13"] == "not_in_sod" and report["verdict"] == "invalid"
    # the signature is sound, but the CSCA trusted is another country's: untrusted, never valid
    report = service.verify_chip(files, [chips.foreign_pki("ec").csca_der])
    assert report["verdict"] == "untrusted" and report["chain"]["status"] == "untrusted"
    # a card's chip verifies as a chip, but is not a passport
    card = chips.issue(reg, vault, BINH)
    report = service.verify_chip(chips.files_of(card, vault), cscas(reg))
    assert report["verdict"] == "invalid" and chips.checks(report) == ["document"]
    assert report["signature_valid"] and report["chain"]["status"] == "trusted"
    # files that are not a chip read: the area's error, naming the field
    with pytest.raises(InvalidInput) as info:
        service.verify_chip({"DG1": files["DG1"]}, cscas(reg))
    assert info.value.field == "EF.SOD"
    with pytest.raises(InvalidInput) as info:
        service.verify_chip({**files, "EF.SOD": b"\x77\x03abc"}, cscas(reg))
    assert info.value.field == "EF.SOD"


def test_a_child_under_14_gets_a_five_year_passport_without_a_chip(reg, vault):
    refused(reg, vault, RuleViolation, "chip_under_14", "chip", DUNG)  # born 2015
    view = issue(reg, vault, DUNG, chip=False)
    issue_date = dt.date.fromisoformat(view["issue_date"])
    assert view["expiry_date"] == issue_date.replace(year=issue_date.year + 5).isoformat()
    assert mrz.validate(view["mrz"]).format == "TD3"
    row = row_of(reg, view["number"])
    assert (row.chip, row.sod, row.dg1, row.signer_id, row.chip_key) == (False, None, None, None, None)
    assert service.chip_files(row, vault) == {}
    # the table itself refuses a chip passport without its files
    with pytest.raises(sa.exc.IntegrityError):
        with reg.begin() as conn:
            conn.execute(passports.update().where(passports.c.passport_id == row.passport_id).values(chip=True))


def test_the_validity_follows_the_law_on_exit_and_entry():
    assert production.expiry_date(dt.date(2012, 12, 7), dt.date(2026, 12, 6)) == dt.date(2031, 12, 6)  # 13
    assert production.expiry_date(dt.date(2012, 12, 6), dt.date(2026, 12, 6)) == dt.date(2036, 12, 6)  # 14 today
    assert production.expiry_date(dt.date(2000, 1, 1), dt.date(2028, 2, 29)) == dt.date(2038, 2, 28)
    assert not production.chip_allowed(dt.date(2012, 12, 7), dt.date(2026, 12, 6))
    assert numbers.format_number(numbers.PER_SERIES + 1) == "Q0000001"


def test_unknown_dead_foreign_or_out_of_area_persons_get_no_passport(reg, vault):
    refused(reg, vault, NotFound, "not_found", "pid", "001099999999")
    refused(reg, vault, NotFound, "not_found", "pid", AN, actor=HCMC_OFFICER)  # out of area: as unknown
    refused(reg, vault, InvalidInput, "invalid_input", "kind", AN, kind="renewal")
    refused(reg, vault, InvalidInput, "invalid_input", "chip", AN, chip=1)
    refused(reg, vault, InvalidInput, "invalid_input", "previous_passport", AN, kind="expired",
            previous_number="X12")
    record(reg, "death", pid=GIANG, date_of_death=(NOW.date() - dt.timedelta(days=1)).isoformat())
    refused(reg, vault, RuleViolation, "person_dead", "pid", GIANG)
    with reg.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(passports)).scalar_one() == 0
        # nothing was allocated by a refusal
        assert conn.execute(sa.select(passport_counters.c.last_value)).scalar() is None
    # HCMC's officer issues to a person of their area
    assert issue(reg, vault, DUC, actor=HCMC_OFFICER)["status"] == "issued"


def test_lost_invalidates_the_previous_passport_and_each_case_has_its_rules(reg, vault):
    first = issue(reg, vault, AN)
    refused(reg, vault, RuleViolation, "not_first_passport", "kind", AN)
    refused(reg, vault, RuleViolation, "passport_still_valid", "kind", AN, kind="expired")
    refused(reg, vault, RuleViolation, "no_previous_passport", "kind", HOA, kind="lost")
    refused(reg, vault, RuleViolation, "previous_passport_unknown", "previous_passport", AN, kind="lost",
            previous_number="C7654321")
    other = issue(reg, vault, BINH)
    refused(reg, vault, InvalidInput, "invalid_input", "previous_passport", AN, kind="lost",
            previous_number=other["number"])
    # lost: the lost passport is invalidated, the new one issued, both in the history
    second = issue(reg, vault, AN, kind="lost", previous_number=first["number"])
    lost = row_of(reg, first["number"])
    assert (lost.status, lost.revocation_reason) == ("invalidated", "lost")
    assert second["previous_number"] == first["number"] and second["number"] != first["number"]
    # damaged: the current one is revoked as replaced
    third = issue(reg, vault, AN, kind="damaged")
    assert (row_of(reg, second["number"]).status, row_of(reg, second["number"]).revocation_reason) == \
        ("revoked", "replaced")
    with reg.connect() as conn:
        mine = service.passport_of(conn, OFFICER, AN)
        entries = [e for e in history(conn, AN) if e["kind"].startswith("passport.")]
        messages = conn.execute(sa.select(outbox.c.topic).where(outbox.c.topic.like("passport.%"))
                                .order_by(outbox.c.seq)).scalars().all()
    assert mine["current"]["number"] == third["number"]
    assert [p["status"] for p in mine["passports"]] == ["invalidated", "revoked", "issued"]
    assert [e["kind"] for e in entries] == ["passport.issued", "passport.invalidated", "passport.issued",
                                            "passport.revoked", "passport.issued"]
    assert entries[0]["changes"][0]["field"] == "passport"
    assert entries[0]["changes"][0]["new"]["number"] == first["number"]
    assert entries[0]["reason"] == "first" and entries[1]["reason"].startswith("lost")
    assert entries[0]["legal_basis"].startswith("Luật Xuất cảnh, nhập cảnh")
    assert messages.count("passport.issued") == 4 and messages.count("passport.revoked") == 2
    # expired: allowed once less than six months are left
    later = NOW + dt.timedelta(days=365 * 10 - 100)
    fourth = issue(reg, vault, AN, kind="expired", now=later, chip=False)  # (the CSCA would need a rollover)
    assert row_of(reg, third["number"]).status == "revoked" and fourth["status"] == "issued"
    # a person whose earlier passport predates the register names it
    before = issue(reg, vault, HOA, kind="expired", previous_number="C1234567")
    assert before["previous_number"] == "C1234567"


def test_one_issued_passport_per_person_is_kept_by_the_database(reg, vault):
    row = row_of(reg, issue(reg, vault, AN)["number"])
    values = {c: getattr(row, c) for c in row._fields if c != "passport_id"}
    values.update(number="P9999990", sod_digest="0" * 64)
    with pytest.raises(sa.exc.IntegrityError):
        with reg.begin() as conn:
            conn.execute(passports.insert().values(**values))


def test_revoke(reg, vault):
    view = issue(reg, vault, AN)
    with pytest.raises(InvalidInput) as info:
        with reg.begin() as conn:
            service.revoke(conn, OFFICER, view["number"], "bored")
    assert info.value.field == "reason"
    with pytest.raises(NotFound) as info:
        with reg.begin() as conn:
            service.revoke(conn, HCMC_OFFICER, view["number"], "withdrawn")
    assert info.value.field == "number"
    with reg.begin() as conn:
        done = service.revoke(conn, OFFICER, view["number"], "lost")
    assert (done["status"], done["revocation_reason"]) == ("invalidated", "lost")
    with pytest.raises(Conflict) as info:
        with reg.begin() as conn:
            service.revoke(conn, OFFICER, view["number"], "withdrawn")
    assert info.value.code == "not_issued"
    row = row_of(reg, view["number"])
    with reg.connect() as conn:
        checked = service.verify_passport(conn, service.chip_files(row, vault))
    assert checked["register"]["passport"] == "invalidated" and checked["verdict"] == "invalid"
    # after a loss reported alone, the new passport is a "lost" one without a previous current passport
    assert issue(reg, vault, AN, kind="lost")["previous_number"] is None


def _passport_form(pid: str, name: str, born: str, **extra) -> dict:
    return {"applicant": {"pid": pid, "full_name": name, "date_of_birth": born}, "kind": "first",
            "delivery": {"method": "in_person"}, **extra}


def _filed(engine, pid: str, form: dict):
    with UnitOfWork(engine).begin() as conn:
        person_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()
        filed = dossier_service.file(conn, person_id, effects.PASSPORT, form)
        return conn.execute(sa.select(dossiers).where(dossiers.c.dossier_id == filed["dossier_id"])).one()


def test_the_dossier_approval_issues_the_passport(reg, vault):
    dossier = _filed(reg, AN, _passport_form(AN, "Nguyễn Văn An", "1985-03-04", chip=True, occupation="Kỹ sư"))
    ctx = effects.Context(vault=vault, now=NOW)
    with UnitOfWork(reg).begin() as conn:
        summary = service.dossier_effect(conn, dossier, dossier.data, OFFICER, ctx)
    assert summary["event"] == "passport_issued" and summary["pid"] == AN and summary["chip"] is True
    row = row_of(reg, summary["passport_number"])
    assert (row.dossier_code, row.expiry_date.isoformat()) == (dossier.code, summary["expiry_date"])
    # a child's dossier asking for a chip: the register's refusal names the form's field
    child = _filed(reg, DUNG, _passport_form(DUNG, "Nguyễn Thị Dung", "2015-07-08", chip=True))
    with pytest.raises(effects.RegisterRefused) as info:
        with UnitOfWork(reg).begin() as conn:
            service.dossier_effect(conn, child, child.data, OFFICER, ctx)
    assert (info.value.code, info.value.field) == ("chip_under_14", "chip")
    again = SimpleNamespace(code="X", person_id=row.person_id)
    with pytest.raises(effects.RegisterRefused) as info:
        with UnitOfWork(reg).begin() as conn:
            service.dossier_effect(conn, again, {"kind": "first"}, OFFICER, ctx)
    assert (info.value.code, info.value.field) == ("not_first_passport", "kind")


def _concurrently(engine, vault, pids: list[str], kind="first") -> list:
    barrier = threading.Barrier(len(pids))

    def one(pid):
        barrier.wait()
        try:
            return issue(engine, vault, pid, kind=kind)
        except (Conflict, RuleViolation) as exc:  # the index (at once) or the rules (after the winner)
            return exc

    with ThreadPoolExecutor(len(pids)) as pool:
        return list(pool.map(one, pids))


def test_concurrent_issues_get_distinct_numbers(reg, vault):
    adults = [AN, BINH, CHAU, DUC, HOA, *[m[0] for m in MORE]][:8]
    assert len(adults) == 8
    done = _concurrently(reg, vault, adults)
    numbers_given = [d["number"] for d in done]
    assert len(set(numbers_given)) == 8, numbers_given
    assert sorted(numbers_given) == [numbers.format_number(n) for n in range(1, 9)]
    with reg.connect() as conn:
        assert conn.execute(sa.select(passport_counters.c.last_value)).scalar_one() == 8
    # eight issues for one person at once: one passport, the others refused, never two issued
    done = _concurrently(reg, vault, [GIANG] * 8)
    issued = [d for d in done if isinstance(d, dict)]
    assert len(issued) == 1, done
    assert {getattr(d, "code", None) for d in done if not isinstance(d, dict)} <= {"passport_changed",
                                                                                  "not_first_passport"}, done
    with reg.connect() as conn:
        rows = conn.execute(sa.select(passports.c.status).select_from(passports.join(
            persons, persons.c.person_id == passports.c.person_id)).where(persons.c.pid == GIANG)).all()
    assert [r.status for r in rows] == ["issued"]


def test_the_approval_path_issues_it_and_a_death_revokes_it(reg, vault):
    """The catalogue's passport service is wired to the register (``dossiers.effects``), and once the
    passports' hooks are wired (as the app and the register's CLI do) a death revokes the passport
    in the death's own transaction."""
    import dinhdanh.passports

    assert effects.EFFECTS[effects.PASSPORT] is service.dossier_effect
    made = issue(reg, vault, BINH)
    dinhdanh.passports.hooks()
    dinhdanh.passports.hooks()  # once, however often it is called
    assert ev.AFTER_EVENT.count(service.after_life_event) == 1
    record(reg, "death", pid=BINH, date_of_death=(NOW - dt.timedelta(days=1)).date().isoformat())
    ended = row_of(reg, made["number"])
    assert (ended.status, ended.revocation_reason) == ("revoked", "death")
