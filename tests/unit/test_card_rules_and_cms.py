"""Card validity rules, the vault, and the CMS / SOD codec (both read paths, fuzzed)."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings, strategies as st

from dinhdanh.cards.validity import expiry_date, next_milestone
from dinhdanh.ids.exceptions import InvalidFormat
from dinhdanh.ids.lds import cms, sod
from dinhdanh.ids.lds.certs import TrustStore, explicit_spki, load_public_key
from dinhdanh.ids.lds.passive import passive_authentication
from dinhdanh.store.vault import Vault, VaultError, for_database

D = dt.date


@pytest.mark.parametrize(("born", "issued", "expected"), [
    (D(2012, 5, 10), D(2020, 1, 1), D(2026, 5, 10)),    # 7: to 14
    (D(2008, 5, 10), D(2020, 6, 1), D(2033, 5, 10)),    # 12, within 2 years of 14: to 25
    (D(1996, 5, 10), D(2020, 6, 1), D(2036, 5, 10)),    # 24: to 40
    (D(1997, 5, 10), D(2020, 5, 9), D(2022, 5, 10)),    # 22 the day before the birthday: to 25
    (D(1997, 5, 10), D(2020, 5, 10), D(2037, 5, 10)),   # 23 on the birthday: to 40
    (D(1970, 1, 1), D(2020, 6, 1), D(2030, 1, 1)),      # 50: to 60
    (D(1962, 7, 1), D(2020, 7, 1), None),               # 58: never expires
    (D(2000, 2, 29), D(2010, 1, 1), D(2014, 2, 28)),    # 29 February, to a common year
])
def test_expiry_follows_the_milestones(born, issued, expected):
    assert expiry_date(born, issued) == expected


def test_next_milestone_none_after_58():
    assert next_milestone(D(1950, 1, 1), D(2026, 1, 1)) is None


def test_vault_binds_purpose_and_key():
    vault = Vault(os.urandom(32))
    sealed = vault.seal(b"face", "dg2")
    assert b"face" not in sealed
    assert vault.open(sealed, "dg2") == b"face"
    with pytest.raises(VaultError):
        vault.open(sealed, "chip-key")
    with pytest.raises(VaultError):
        Vault(os.urandom(32)).open(sealed, "dg2")
    with pytest.raises(VaultError):
        vault.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), "dg2")


def test_vault_key_file_beside_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("DINHDANH_MASTER_KEY", raising=False)
    url = f"sqlite:///{tmp_path}/r.sqlite"
    first = for_database(url)
    key_file = tmp_path / "r.sqlite.master-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert for_database(url).open(first.seal(b"x", "t"), "t") == b"x"
    with pytest.raises(VaultError):
        for_database("postgresql+psycopg://u@h/db")


def _pki(curve=ec.SECP256R1()):
    now = dt.datetime.now(dt.UTC)
    csca_key = ec.generate_private_key(curve)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "UT"), x509.NameAttribute(NameOID.COMMON_NAME, "CSCA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(csca_key.public_key())
    csca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(csca_key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=900))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True).add_extension(ski, False)
            .sign(csca_key, hashes.SHA256()))
    dsc_key = ec.generate_private_key(curve)
    dsc = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DS")]))
           .issuer_name(name).public_key(dsc_key.public_key()).serial_number(2)
           .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=300))
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
           .sign(csca_key, hashes.SHA256()))
    der = lambda c: c.public_bytes(serialization.Encoding.DER)  # noqa: E731
    return der(csca), der(dsc), dsc_key


CSCA, DSC, DSC_KEY = _pki()
DGS = {1: b"\x61\x03\x5f\x1f\x00", 2: b"\x75\x02\x01\x02", 13: b"\x6d\x00"}


def _sod(dgs=DGS, content_type=sod.LDS_SECURITY_OBJECT):
    sign = lambda data: DSC_KEY.sign(data, ec.ECDSA(hashes.SHA256()))  # noqa: E731
    if content_type == sod.LDS_SECURITY_OBJECT:
        return sod.build(dgs, certificate=DSC, sign=sign, signature_algorithm={"algorithm": "sha256_ecdsa"})
    info = cms.build(content_type=content_type, content=b"hello", certificate=DSC, sign=sign,
                     signature_algorithm={"algorithm": "sha256_ecdsa"})
    return b"\x77" + bytes([0x82]) + len(info).to_bytes(2, "big") + info


def test_der_and_asn1crypto_read_the_same_signed_data(monkeypatch):
    raw = _sod()
    fast = sod.parse(raw)
    monkeypatch.setattr(cms, "_parse_der", lambda der: (_ for _ in ()).throw(ValueError("force fallback")))
    slow = sod.parse(raw)
    for field in ("content_type", "content", "certificates", "digest_algorithm", "signature", "signed_attrs",
                  "attr_content_type", "attr_message_digest", "sid_issuer", "sid_serial", "sid_key_id"):
        assert getattr(fast.signed, field) == getattr(slow.signed, field), field
    assert fast.security_object == slow.security_object
    assert asn1_cms.ContentInfo.load(raw[4:])["content"]["encap_content_info"]["content_type"].dotted \
        == sod.LDS_SECURITY_OBJECT


def test_passive_authentication_and_each_failure():
    store = TrustStore([CSCA])
    files = {-1: _sod(), **DGS}
    assert passive_authentication(files, store).verdict == "valid"
    assert passive_authentication({**files, 2: b"\x75\x02\x01\x03"}, store).data_groups["DG2"] == "mismatch"
    assert passive_authentication({**files, 3: b"\x63\x00"}, store).data_groups["DG3"] == "not_in_sod"
    assert passive_authentication(files, TrustStore()).verdict == "untrusted"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    assert [f["check"] for f in passive_authentication(files, store, at=later).failures] == ["chain"]
    wrong = passive_authentication({-1: _sod(content_type="1.2.840.113549.1.7.1"), **DGS}, store)
    assert "sod" in [f["check"] for f in wrong.failures]
    signature = bytearray(files[-1])
    signature[-3] ^= 0x01  # inside the ECDSA signature, the last field of the SignerInfo
    broken = passive_authentication({**files, -1: bytes(signature)}, store)
    assert not broken.signature_valid and broken.failures[0]["check"] == "signature"


def test_explicit_brainpool_key_loads_and_verifies():
    key = ec.generate_private_key(ec.BrainpoolP384R1())
    spki = explicit_spki(key.public_key())
    with pytest.raises((ValueError, UnsupportedAlgorithm)):
        serialization.load_der_public_key(spki)  # what cryptography alone does with it
    signature = key.sign(b"m", ec.ECDSA(hashes.SHA384()))
    assert load_public_key(spki).verify(signature, b"m", scheme="ecdsa", hash_name="sha384")
    assert not load_public_key(spki).verify(signature, b"n", scheme="ecdsa", hash_name="sha384")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_sod_parser_refuses_garbage_cleanly(data):
    try:
        sod.parse(data)
    except InvalidFormat:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=600), st.integers(min_value=0, max_value=255))
def test_one_changed_byte_never_crashes_verification(position, value):
    raw = bytearray(_sod())
    position %= len(raw)
    raw[position] = value
    try:
        passive_authentication({-1: bytes(raw), **DGS}, TrustStore([CSCA]))
    except InvalidFormat:
        pass
