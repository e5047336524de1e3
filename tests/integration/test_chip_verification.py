"""Chip verification against the national PKI and the register, on SQLite and PostgreSQL: a genuine
card passes every step, and each kind of fault fails at its own step, named in ``failures``.

Foreign PKIs are made with pure functions (tests/chips.py): ECDSA P-256, Brainpool with explicit
curve parameters, RSA PKCS#1 v1.5 with SHA-1.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives.asymmetric import rsa

from dinhdanh.cards import chip, lifecycle, pki, verification
from dinhdanh.cards.tables import cards, pki_keys
from dinhdanh.ids.lds import certs, cms, dg13, sod, tlv
from dinhdanh.registry import commands as cmd
from dinhdanh.registry import events as ev
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound
from dinhdanh.registry.tables import persons
from dinhdanh.store.vault import Vault
from tests import chips
from tests.chips import AN, BINH, NATIONAL

TODAY = dt.datetime.now(dt.UTC).date()
ALL_MATCH = {"DG1": "match", "DG2": "match", "DG13": "match", "DG14": "match", "DG15": "match"}


@pytest.fixture(autouse=True)
def _fresh_caches():
    chips.reset_caches()
    yield
    chips.reset_caches()


@dataclass
class Issued:
    engine: sa.Engine
    vault: Vault
    card: object  # the cards row

    @property
    def files(self) -> dict[int, bytes]:
        return chips.files_of(self.card, self.vault)

    def verify(self, files=None, **kw) -> dict:
        return chips.verify(self.engine, self.files if files is None else files, **kw)

    def aa(self, challenge: bytes | None = None) -> dict:
        challenge = challenge or os.urandom(8)
        return {"challenge": challenge,
                "response": chip.respond_to_challenge(self.card, self.vault, challenge)}

    def resign(self, files) -> dict[int, bytes]:
        with self.engine.begin() as conn:
            return chips.resign(conn, self.vault, files)

    def trust(self, der: bytes, kind: str) -> dict:
        with self.engine.begin() as conn:
            return pki.add_trust_anchor(conn, der, kind)


@pytest.fixture
def issued(family) -> Issued:
    """FAMILY, the national PKI, and An's card."""
    vault = chips.new_vault()
    with family.begin() as conn:
        pki.init_pki(conn, vault)
    return Issued(family, vault, chips.issue(family, vault, AN))


@pytest.fixture(scope="module")
def rsa_3072():
    """One RSA 3072 key for the module (generating one is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def only(report: dict, check: str) -> dict:
    """The report failed at ``check`` and nowhere else; returns that failure."""
    assert report["verdict"] == "invalid", report
    assert chips.checks(report) == [check], report["failures"]
    return report["failures"][0]


# ------------------------------------------------------------------------------ a genuine card


def test_a_genuine_card_passes_every_step(issued):
    report = issued.verify(**issued.aa())
    assert report["verdict"] == "valid" and report["failures"] == []
    assert (report["signature_valid"], report["hash_algorithm"]) == (True, "sha256")
    assert report["chain"]["status"] == "trusted"
    assert report["chain"]["csca"] == "Common Name: CSCA VN, Organization: Bo Cong An, Country: VN"
    assert report["document_signer"]["subject"] == (
        "Common Name: Document Signer 0001, Organization: Bo Cong An, Country: VN")
    assert (report["data_groups"], report["not_read"]) == (ALL_MATCH, [])
    assert report["active_authentication"]["status"] == "passed"
    assert report["consistency"] == {"status": "consistent", "mismatches": []}
    assert report["register"] == {"card": "current", "card_number": AN, "reason": None, "person": "alive",
                                  "data": "agrees", "differences": []}
    with issued.engine.connect() as conn:
        _, person_id = verification.verify_card(conn, issued.files)
        assert person_id == conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == AN)).scalar_one()


def test_without_a_challenge_active_authentication_is_not_performed(issued):
    report = issued.verify()
    assert report["verdict"] == "valid"
    assert report["active_authentication"] == {"status": "not_performed", "reason": "no challenge given"}


def test_a_dg_the_reader_skipped_is_listed_as_not_read(issued):
    files = issued.files
    del files[2]
    report = issued.verify(files)
    assert (report["verdict"], report["not_read"], "DG2" in report["data_groups"]) == ("valid", ["DG2"], False)


# ------------------------------------------------------------------------------- data groups


def _offset(card, n: int, raw: bytes) -> int:
    """A bit whose flip leaves the file readable and its other checks untouched."""
    if n == 1:  # the N of the nationality VNM, covered by no check digit and not compared with DG13
        return raw.index(card.mrz.split("\n")[1].encode()) + 16
    if n == 13:  # a letter of the residence, which nothing compares
        return raw.index("Hoàn Kiếm".encode())
    return len(raw) // 2  # DG2: inside the JPEG; DG14: inside the security infos


@pytest.mark.parametrize("n", [1, 2, 13, 14])
def test_one_bit_flipped_in_a_dg_is_a_mismatch_of_that_dg(issued, n):
    files = issued.files
    files[n] = chips.flip(files[n], _offset(issued.card, n, files[n]))
    report = issued.verify(files)
    assert only(report, "data_groups") == {"check": "data_groups",
                                           "reason": f"the hash of DG{n} differs from the SOD's"}
    assert report["data_groups"] == {**ALL_MATCH, f"DG{n}": "mismatch"}
    assert report["signature_valid"] and report["chain"]["status"] == "trusted"
    assert report["consistency"]["status"] == "consistent"
    assert report["register"]["card"] == "current"  # EF.SOD itself is the issued one


def test_a_substituted_aa_key_fails_both_the_hash_and_active_authentication(issued):
    """A clone with its own key pair in DG15: the SOD does not cover it, so AA cannot pass."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from dinhdanh.ids.lds import aa, dg15

    key = ec.generate_private_key(ec.SECP256R1())
    files = issued.files
    files[15] = dg15.encode(key.public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    challenge = os.urandom(8)
    report = issued.verify(files, challenge=challenge, response=aa.sign(key, challenge))
    assert chips.checks(report) == ["data_groups", "active_authentication"]
    assert report["data_groups"]["DG15"] == "mismatch"
    assert report["active_authentication"] == {"status": "failed",
                                               "reason": "DG15 is not protected by a valid SOD hash"}


def test_a_dg_the_sod_does_not_list(issued):
    files = {**issued.files, 3: tlv.encode(0x63, tlv.encode(0x02, b"\x00"))}
    report = issued.verify(files)
    assert only(report, "data_groups")["reason"] == "DG3 was read but the SOD does not list it"
    assert report["data_groups"] == {**ALL_MATCH, "DG3": "not_in_sod"}


# -------------------------------------------------------------------------------------- EF.SOD


def test_a_sod_of_the_wrong_content_type_fails_at_sod(issued):
    files = issued.files
    with issued.engine.begin() as conn:
        signer = pki.document_signer(conn, issued.vault)
    info = cms.build(content_type="1.2.840.113549.1.7.1",
                     content=sod.security_object_der(chips.dgs(files), "sha256"),
                     certificate=signer.certificate, sign=signer.raw_sign,
                     signature_algorithm=signer.signature_algorithm, digest_algorithm="sha256")
    files[-1] = tlv.encode(0x77, info)
    report = issued.verify(files)
    failure = only(report, "sod")
    assert "1.2.840.113549.1.7.1" in failure["reason"] and "2.23.136.1.1.1" in failure["reason"]
    assert (report["signature_valid"], report["chain"]["status"]) == (True, "trusted")
    assert (report["data_groups"], report["hash_algorithm"]) == ({}, None)


def test_a_tampered_signature_fails_at_signature(issued):
    files = issued.files
    files[-1] = chips.flip(files[-1], len(files[-1]) - 1)
    report = issued.verify(files)
    failure = only(report, "signature")
    assert failure["reason"] == "the signature does not verify with the signer certificate's key"
    assert report["signature_valid"] is False
    assert (report["chain"]["status"], report["data_groups"]) == ("trusted", ALL_MATCH)
    # a SOD whose signature fails is not looked up: a forger learns nothing of the register
    assert report["register"] == {"card": "not_checked", "card_number": None,
                                  "reason": "the SOD is not signed by a trusted Document Signer",
                                  "person": "not_checked", "data": "not_checked", "differences": []}


def test_a_re_signed_sod_over_changed_content_fails_at_signature(issued):
    """The signed attributes are the original, the content another: the message digest differs."""
    files = issued.files
    original = chips.sod_content(files[-1])
    signed = cms.parse(original)
    other = sod.security_object_der({**chips.dgs(files), 1: b"\x61\x00"}, "sha256")
    assert len(other) == len(signed.content)
    files[-1] = tlv.encode(0x77, original.replace(signed.content, other))
    report = issued.verify(files)
    assert chips.checks(report) == ["signature", "data_groups"]  # DG1's listed hash is now another
    assert report["failures"][0]["reason"] == "the message-digest attribute does not match the signed content"
    assert report["data_groups"] == {**ALL_MATCH, "DG1": "mismatch"}


# ------------------------------------------------------------------------------------- the chain


def test_an_expired_document_signer_fails_the_chain(issued):
    with issued.engine.connect() as conn:
        dsc = conn.execute(sa.select(pki_keys).where(pki_keys.c.key_id == issued.card.signer_id)).one()
    report = issued.verify(at=dsc.not_after + dt.timedelta(days=1))
    failure = only(report, "chain")
    assert failure["reason"] == f"the Document Signer certificate expired on {dsc.not_after:%Y-%m-%d}"
    assert report["chain"]["status"] == "invalid"
    early = issued.verify(at=dsc.not_before - dt.timedelta(days=1))
    assert only(early, "chain")["reason"].startswith("the Document Signer certificate is not valid before")
    assert issued.verify(at=dsc.not_after - dt.timedelta(days=1))["verdict"] == "valid"


def test_a_revoked_document_signer_fails_the_chain_and_a_new_one_takes_over(issued):
    with issued.engine.begin() as conn:
        out = pki.revoke_key(conn, issued.vault, issued.card.signer_id)
    assert out["crl_number"] == 2
    report = issued.verify()
    failure = only(report, "chain")
    assert "revoked" in failure["reason"] and "key_compromise" in failure["reason"]
    assert report["chain"]["status"] == "invalid"
    with pytest.raises(Conflict) as info:
        with issued.engine.begin() as conn:
            pki.revoke_key(conn, issued.vault, issued.card.signer_id)
    assert info.value.code == "already_revoked"
    with pytest.raises(NotFound):
        with issued.engine.begin() as conn:
            pki.revoke_key(conn, issued.vault, 1)  # the CSCA is not revoked this way
    # the next card gets a new Document Signer and verifies
    fresh = chips.issue(issued.engine, issued.vault, BINH)
    assert fresh.signer_id != issued.card.signer_id
    assert chips.verify(issued.engine, chips.files_of(fresh, issued.vault))["verdict"] == "valid"


def test_a_foreign_chip_is_untrusted_until_its_csca_is_trusted(issued):
    foreign = chips.foreign_pki("ec", "UT")
    passport = foreign.passport()
    report = issued.verify(passport)
    assert (report["verdict"], report["failures"], report["chain"]["status"]) == ("untrusted", [], "untrusted")
    assert report["signature_valid"] and report["data_groups"] == {"DG1": "match", "DG2": "match"}
    assert report["register"] == {"card": "not_checked", "card_number": None,
                                  "reason": "the SOD is not signed by a trusted Document Signer",
                                  "person": "not_checked", "data": "not_checked", "differences": []}
    assert report["consistency"]["status"] == "not_checked"
    added = issued.trust(foreign.csca_der, "csca")
    assert added["kind"] == "csca" and "CSCA UT" in added["label"]
    trusted = issued.verify(passport)
    assert (trusted["verdict"], trusted["chain"]["status"]) == ("valid", "trusted")
    # the foreign country's CRL, once trusted, revokes its Document Signer
    issued.trust(foreign.crl([foreign.dsc_serial]), "crl")
    assert "revoked" in only(issued.verify(passport), "chain")["reason"]


def test_a_card_of_another_register_is_untrusted_until_its_csca_is_trusted(issued, tmp_path):
    from dinhdanh.population.importer import import_population
    from dinhdanh.store.engine import make_engine, upgrade
    from tests.support import FAMILY, write_people

    other = make_engine(f"sqlite:///{tmp_path / 'other.sqlite'}")
    try:
        upgrade(other)
        import_population(other, write_people(tmp_path / "other.csv", FAMILY))
        vault = chips.new_vault()
        with other.begin() as conn:
            pki.init_pki(conn, vault, algorithm="brainpool-p256", country="XK")
            csca = pki.csca_certificates(conn)[0]
        card = chips.issue(other, vault, BINH)
        files = chips.files_of(card, vault)
    finally:
        other.dispose()
    report = issued.verify(files)
    assert (report["verdict"], report["chain"]["status"], report["failures"]) == ("untrusted", "untrusted", [])
    assert (report["register"]["card"], report["register"]["person"]) == ("not_checked", "not_checked")
    issued.trust(csca, "csca")
    trusted = issued.verify(files)
    assert trusted["verdict"] == "valid"
    assert (trusted["register"]["card"], trusted["register"]["person"]) == ("unknown", "alive")


def test_a_foreign_master_list_makes_its_cscas_trusted(issued):
    foreign = chips.foreign_pki("ec", "UT")
    other = chips.foreign_pki("ec", "XA")
    added = issued.trust(foreign.master_list([foreign.csca_der, other.csca_der]), "master_list")
    assert added["label"] == "master list of 2 CSCAs"
    for country in (foreign, other):
        assert issued.verify(country.passport())["verdict"] == "valid"
    # a master list whose signer no listed CSCA issued is refused, and nothing is kept
    stranger = chips.foreign_pki("ec", "ZZ")
    with pytest.raises(InvalidInput) as info:
        issued.trust(stranger.master_list([other.csca_der]), "master_list")
    assert info.value.field == "file" and "not issued by any CSCA on the list" in info.value.message
    assert issued.verify(stranger.passport())["verdict"] == "untrusted"


def test_a_brainpool_csca_with_explicit_curve_parameters_is_trusted(issued):
    foreign = chips.foreign_pki("brainpool", "DE", explicit=True)
    for der in (foreign.csca_der, foreign.dsc_der):
        params = asn1_keys.PublicKeyInfo.load(certs.parse_certificate(der).spki)["algorithm"]["parameters"]
        assert params.name == "specified"  # the curve is written out, not named
    passport = foreign.passport()
    assert issued.verify(passport)["verdict"] == "untrusted"
    issued.trust(foreign.csca_der, "csca")
    report = issued.verify(passport)
    assert (report["verdict"], report["chain"]["status"], report["signature_valid"]) == ("valid", "trusted", True)


@pytest.mark.parametrize("signature_algorithm", [None, {"algorithm": "rsassa_pkcs1v15"}],
                         ids=["sha1WithRSAEncryption", "rsaEncryption"])
def test_a_sha1_rsa_pkcs1_sod_verifies(issued, rsa_3072, signature_algorithm):
    foreign = chips.foreign_pki("rsa", "UT", hash_name="sha1", rsa_key=rsa_3072)
    passport = foreign.passport(signature_algorithm=signature_algorithm)
    issued.trust(foreign.csca_der, "csca")
    report = issued.verify(passport)
    assert (report["verdict"], report["hash_algorithm"], report["signature_valid"]) == ("valid", "sha1", True)
    tampered = {**passport, -1: chips.flip(passport[-1], len(passport[-1]) - 1)}
    assert only(issued.verify(tampered), "signature")


# ------------------------------------------------------------------------ Active Authentication


def test_active_authentication_with_a_wrong_response_fails(issued):
    challenge = os.urandom(8)
    other = chips.issue(issued.engine, issued.vault, BINH)  # another card's chip answers
    wrong = chip.respond_to_challenge(other, issued.vault, challenge)
    report = issued.verify(challenge=challenge, response=wrong)
    assert only(report, "active_authentication") == {
        "check": "active_authentication", "reason": "the response is not the chip's signature of the challenge"}
    assert report["active_authentication"]["status"] == "failed"
    replayed = issued.aa()  # a genuine answer to another challenge
    report = issued.verify(challenge=os.urandom(8), response=replayed["response"])
    assert only(report, "active_authentication")
    half = issued.verify(challenge=challenge)
    assert only(half, "active_authentication")["reason"] == (
        "Active Authentication needs both a challenge and a response")


# ------------------------------------------------------------------------------- the register


def test_a_card_reported_lost_is_revoked_in_the_register(issued):
    with issued.engine.begin() as conn:
        lifecycle.revoke_card(conn, NATIONAL, AN, "lost")
    report = issued.verify(**issued.aa())
    assert only(report, "register") == {"check": "register", "reason": "the card is revoked (lost)"}
    assert (report["register"]["card"], report["register"]["reason"]) == ("revoked", "lost")
    assert (report["chain"]["status"], report["active_authentication"]["status"]) == ("trusted", "passed")


def test_the_card_of_a_dead_person_fails_at_register(issued):
    with issued.engine.begin() as conn:
        ev.record_event(conn, NATIONAL, "death", cmd.DeathRegistration(pid=AN, date_of_death=TODAY.isoformat()))
    report = issued.verify()
    assert report["failures"] == [{"check": "register", "reason": "the card is revoked (death)"},
                                  {"check": "register", "reason": "the holder is recorded as dead"}]
    assert (report["verdict"], report["register"]["person"]) == ("invalid", "dead")


def test_an_expired_card_fails_at_register(issued):
    with issued.engine.begin() as conn:
        conn.execute(cards.update().values(expiry_date=TODAY - dt.timedelta(days=1)))
    report = issued.verify()
    assert only(report, "register")["reason"] == "the card is expired"
    assert report["register"]["card"] == "expired"


def test_dg1_and_dg13_disagreeing_fail_at_consistency(issued):
    files = issued.files
    personal = dg13.decode(files[13])
    files[13] = dg13.encode(dg13.VnPersonalData(**{
        **{k: v for k, v in personal.as_dict().items() if k != "unknown"}, "date_of_birth": "05/03/1985"}))
    files = issued.resign(files)
    report = issued.verify(files)
    assert (report["signature_valid"], report["chain"]["status"], report["data_groups"]) == (True, "trusted", ALL_MATCH)
    assert report["consistency"] == {"status": "inconsistent", "mismatches": [
        {"field": "date_of_birth", "dg1": "850304", "dg13": "05/03/1985"}]}
    assert report["failures"] == [
        {"check": "consistency", "reason": "DG1 and DG13 disagree on date_of_birth"},
        {"check": "register", "reason": "the chip's data differ from the register: date_of_birth"}]
    assert report["register"]["differences"] == [  # what the chip says, never what the register holds
        {"field": "date_of_birth", "chip": "05/03/1985"}]


def test_a_re_signed_chip_with_the_records_data_is_sound_but_not_the_issued_card(issued):
    """Signed by our own Document Signer, but not the EF.SOD of any card issued here."""
    report = issued.verify(issued.resign(issued.files))
    assert report["verdict"] == "valid"
    assert report["register"]["card"] == "unknown" and report["register"]["data"] == "agrees"


def test_input_that_is_not_chip_data_is_refused(issued):
    for sod_bytes in (os.urandom(300), b"\x77\x03\x30\x01\x00", b"", b"\x30\x00"):
        with pytest.raises(InvalidInput) as info:
            issued.verify({-1: sod_bytes, **chips.dgs(issued.files)})
        assert info.value.field == "EF.SOD"
    with pytest.raises(InvalidInput) as info:
        verification.chip_files({"DG1": b"", "DG17": b""})
    assert info.value.field == "DG17"
    with pytest.raises(InvalidInput) as info:
        verification.chip_files({"DG1": b""})
    assert info.value.field == "EF.SOD"


# ------------------------------------------------------- damage that once escaped as a crash


def _sex_flipped(issued) -> dict:
    files = issued.files
    at = files[1].index(issued.card.mrz.split("\n")[1].encode()) + 7  # the M of the sex: becomes L
    files[1] = chips.flip(files[1], at)
    return files


def _spki_oid_flipped(issued) -> dict:
    files = issued.files
    at = files[-1].index(bytes.fromhex("06072a8648ce3d0201")) + 2  # id-ecPublicKey -> 1.3.840.10045.2.1
    files[-1] = chips.flip(files[-1], at)
    return files


def _certificate_algorithm_tag_flipped(issued) -> dict:
    files = issued.files
    ecdsa_sha256 = bytes.fromhex("300a06082a8648ce3d040302")
    first = files[-1].index(ecdsa_sha256)
    outer = files[-1].index(ecdsa_sha256, first + 1)  # the DSC's signatureAlgorithm after its TBS
    files[-1] = chips.flip(files[-1], outer + 2, 7)  # OID tag 06 -> 86
    return files


NOT_SIGNED_BY_CSCA = ("the Document Signer certificate's signature does not verify against the CSCA "
                      "with its key identifier")


@pytest.mark.parametrize("tamper, failures", [
    # DG1's MRZ no longer parses (InvalidComponent): its hash and the comparison with DG13 fail
    (_sex_flipped, [{"check": "data_groups", "reason": "the hash of DG1 differs from the SOD's"},
                    {"check": "consistency", "reason": "DG1 and DG13 disagree on DG1"}]),
    # the DSC's key algorithm is unknown (whether or not asn1crypto has the OID registered): no
    # signature, and its TBS changed
    (_spki_oid_flipped, [{"check": "signature", "reason": "unsupported public key algorithm 1.3.840.10045.2.1"},
                         {"check": "chain", "reason": NOT_SIGNED_BY_CSCA}]),
    # the DSC's own signatureAlgorithm is unreadable (asn1crypto ValueError)
    (_certificate_algorithm_tag_flipped, [{"check": "chain", "reason": NOT_SIGNED_BY_CSCA}]),
], ids=["dg1-sex-M-to-L", "dsc-key-oid", "dsc-algorithm-tag"])
def test_one_bit_flips_deep_in_the_asn1_fail_a_check_and_do_not_crash(issued, tamper, failures):
    report = issued.verify(tamper(issued))
    assert (report["verdict"], report["failures"]) == ("invalid", failures)


# ---------------------------------------------------------------------------------- openssl


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_verifies_the_sod_against_the_csca(issued, tmp_path):
    with issued.engine.connect() as conn:
        csca = pki.csca_certificates(conn)[0]
    chip.write_card(issued.card, issued.vault, csca, tmp_path / "card")
    content = chips.sod_content(issued.card.sod)

    def openssl(der: bytes):
        path = tmp_path / "sod.der"
        path.write_bytes(der)
        return subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in", str(path),
                               "-CAfile", str(tmp_path / "card" / "csca.pem"), "-purpose", "any",
                               "-out", os.devnull], capture_output=True, text=True, timeout=60)

    good = openssl(content)
    assert good.returncode == 0, good.stderr
    assert "Verification successful" in good.stderr
    bad = openssl(chips.flip(content, len(content) - 1))
    assert bad.returncode != 0 and "Verification failure" in bad.stderr


# --------------------------------------------------------------------- the trust-store cache


@pytest.mark.postgres
def test_two_postgres_schemas_do_not_share_a_trust_store(tmp_path):
    from tests.conftest import POSTGRES_URL, _postgres
    from dinhdanh.population.importer import import_population
    from tests.support import FAMILY, write_people

    if not POSTGRES_URL:
        pytest.skip("DINHDANH_TEST_POSTGRES_URL is not set")
    made = []
    try:
        reports = []
        for name in ("a", "b"):
            engine, admin, schema = _postgres()
            made.append((engine, admin, schema))
            import_population(engine, write_people(tmp_path / f"{name}.csv", FAMILY))
            vault = chips.new_vault()
            with engine.begin() as conn:
                pki.init_pki(conn, vault)
            card = chips.issue(engine, vault, AN)
            reports.append(chips.verify(engine, chips.files_of(card, vault)))  # no cache reset in between
        assert [r["verdict"] for r in reports] == ["valid", "valid"], [r["chain"] for r in reports]
    finally:
        for engine, admin, schema in made:
            engine.dispose()
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()


def test_a_master_list_signer_needs_the_icao_extended_key_usage(issued):
    """ICAO 9303-12: the Master List Signer's certificate carries id-icao-cscaMasterListSigningKey.
    One whose EKU marks it non-critical is still a master list signer; a certificate without the
    purpose (no EKU, or another purpose) cannot hand out trust anchors."""
    lenient = chips.foreign_pki("ec", "UT")
    assert issued.trust(lenient.master_list(eku_critical=False), "master_list")["label"] == "master list of 1 CSCAs"
    for country, eku in (("XA", None), ("XB", "1.3.6.1.5.5.7.3.4")):
        foreign = chips.foreign_pki("ec", country)
        with pytest.raises(InvalidInput) as info:
            issued.trust(foreign.master_list(eku=eku), "master_list")
        assert info.value.field == "file" and "2.23.136.1.1.3" in info.value.message
        assert issued.verify(foreign.passport())["verdict"] == "untrusted"
