"""The national PKI's certificates follow the ICAO 9303 Part 12 profile (7.1.1): above all the
Master List Signer's extended key usage, id-icao-mrtd-security-masterListSigningKey, is critical.
Checked with ``cryptography`` and with the ``openssl`` command."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from dinhdanh.cards import pki
from dinhdanh.cards.tables import pki_keys
from tests import chips

MLS_OID = "2.23.136.1.1.3"


@pytest.fixture
def certificates(engine):
    """{role: certificate} of a fresh PKI (CSCA, Document Signer, Master List Signer)."""
    vault = chips.new_vault()
    with engine.begin() as conn:
        pki.init_pki(conn, vault)
        rows = conn.execute(sa.select(pki_keys.c.role, pki_keys.c.certificate)).all()
    return {row.role: x509.load_der_x509_certificate(row.certificate) for row in rows}


def _extensions(cert: x509.Certificate) -> dict[str, bool]:
    return {ext.oid.dotted_string: ext.critical for ext in cert.extensions}


def test_master_list_signer_eku_is_critical_and_only_the_icao_purpose(certificates):
    mls = certificates["mls"]
    eku = mls.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
    assert eku.critical is True
    assert [oid.dotted_string for oid in eku.value] == [MLS_OID]
    usage = mls.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert ExtensionOID.BASIC_CONSTRAINTS.dotted_string not in _extensions(mls)


def test_document_signer_and_csca_profiles(certificates):
    csca, dsc = certificates["csca"], certificates["dsc"]
    basic = csca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = csca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert ExtensionOID.EXTENDED_KEY_USAGE.dotted_string not in _extensions(csca)

    extensions = _extensions(dsc)
    usage = dsc.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    for absent in (ExtensionOID.EXTENDED_KEY_USAGE, ExtensionOID.BASIC_CONSTRAINTS):
        assert absent.dotted_string not in extensions
    # the Document Type List (2.23.136.1.1.6.2): version 0, the chip ID card "ID" and the passport "P"; non-critical
    assert extensions[pki.ICAO_DOCUMENT_TYPE_LIST.dotted_string] is False
    raw = dsc.extensions.get_extension_for_oid(pki.ICAO_DOCUMENT_TYPE_LIST).value.value
    parsed = pki.DocumentTypeList.load(raw)
    assert parsed["version"].native == 0 and sorted(parsed["doc_type_list"].native) == ["ID", "P"]  # a DER SET OF
    aki = dsc.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == csca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    # every other extension is non-critical, as 9303 Part 12 wants
    for cert in certificates.values():
        for oid, critical in _extensions(cert).items():
            if oid not in (ExtensionOID.KEY_USAGE.dotted_string, ExtensionOID.BASIC_CONSTRAINTS.dotted_string,
                           ExtensionOID.EXTENDED_KEY_USAGE.dotted_string):
                assert critical is False, (cert.subject.rfc4514_string(), oid)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_openssl_shows_the_master_list_signer_eku_critical(certificates, tmp_path):
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = certificates["mls"].public_bytes(Encoding.PEM)
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem, capture_output=True,
                          check=True).stdout.decode()
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if "X509v3 Extended Key Usage" in line)
    assert lines[header].strip() == "X509v3 Extended Key Usage: critical", lines[header]
    assert lines[header + 1].strip() == MLS_OID
    # OpenSSL verifies the signer (critical EKU and all) against the CSCA
    for name, role in (("csca.pem", "csca"), ("mls.pem", "mls"), ("dsc.pem", "dsc")):
        (tmp_path / name).write_bytes(certificates[role].public_bytes(Encoding.PEM))
    for leaf in ("mls.pem", "dsc.pem"):
        verified = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(tmp_path / "csca.pem"),
                                   str(tmp_path / leaf)], capture_output=True, text=True)
        assert verified.returncode == 0 and verified.stdout.strip().endswith(": OK"), verified
    dsc_text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(tmp_path / "dsc.pem")],
                              capture_output=True, check=True, text=True).stdout
    assert "2.23.136.1.1.6.2: \n" in dsc_text  # the Document Type List, not marked critical
