"""Helpers for the card tests: a national PKI and cards in a test register, chip files as a reader
sees them, tampering, re-signing, and foreign PKIs built with pure functions (any key kind,
including a Brainpool CSCA whose certificate writes the curve out as explicit parameters)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass

import sqlalchemy as sa
from asn1crypto import keys as asn1_keys, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from dinhdanh.cards import chip, lifecycle, pki, verification
from dinhdanh.cards.tables import cards
from dinhdanh.ids.lds import certs, cms, dg1, dg2, masterlist, sod, tlv
from dinhdanh.registry.events import Actor
from dinhdanh.store.vault import Vault

NATIONAL = Actor("test")
AN, BINH, CHAU, DUNG, DUC, HOA, GIANG = ("001085000001", "001187000002", "001212000003", "001215000004",
                                         "079090000005", "079193000006", "079095000007")
# The ICAO 9303 Part 4 specimen passport of Utopia (public test data).
UTOPIA_TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
              "L898902C36UTO7408122F1204159ZE184226B<<<<<10")

# Every vault a test made, kept alive for the whole session: the PKI caches opened keys by
# ``id(vault)``, and a vault collected and re-allocated at the same address would hand one
# test's keys to another (see test_cards.py, the signer-cache tests).
_VAULTS: list[Vault] = []


def new_vault() -> Vault:
    vault = Vault(os.urandom(32))
    _VAULTS.append(vault)
    return vault


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def reset_caches() -> None:
    """Forget the process-wide trust-store cache (keyed by the database URL, which every
    PostgreSQL test schema shares: see test_chip_verification's cache test)."""
    verification._stores.clear()


# ------------------------------------------------------------------------ the national side


def card_row(conn, card_id: int):
    return conn.execute(sa.select(cards).where(cards.c.card_id == card_id)).one()


def issue(engine, vault: Vault, pid: str, *, at: dt.datetime | None = None, kind: str | None = None):
    """Issue a card (the whole path) and return its ``cards`` row."""
    with engine.begin() as conn:
        view = lifecycle.issue_card(conn, vault, NATIONAL, pid, kind, now=at)
        return card_row(conn, view["card_id"])


def files_of(card, vault: Vault) -> dict[int, bytes]:
    """The chip's files as a reader hands them to ``verify_card``: {0: EF.COM, -1: EF.SOD, n: DGn}."""
    return verification.chip_files(chip.chip_files(card, vault))


def verify(engine, files: dict[int, bytes], **kw) -> dict:
    with engine.begin() as conn:
        report, _ = verification.verify_card(conn, files, **kw)
    return report


def checks(report: dict) -> list[str]:
    return [f["check"] for f in report["failures"]]


def flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


def dgs(files: dict[int, bytes]) -> dict[int, bytes]:
    return {n: raw for n, raw in files.items() if n > 0}


def resign(conn, vault: Vault, files: dict[int, bytes], **kw) -> dict[int, bytes]:
    """The same chip with EF.SOD signed anew, by the national Document Signer, over its DGs."""
    signer = pki.document_signer(conn, vault)
    out = dict(files)
    out[-1] = sod.build(dgs(files), certificate=signer.certificate, sign=signer.raw_sign,
                        signature_algorithm=signer.signature_algorithm,
                        hash_algorithm=kw.pop("hash_algorithm", signer.hash_algorithm), **kw)
    return out


def sod_content(ef_sod: bytes) -> bytes:
    """The CMS ContentInfo inside EF.SOD's 0x77 wrapper (what ``openssl cms`` reads)."""
    return tlv.decode_one(ef_sod, expected_tag=sod.SOD_TAG)


def signature_offset(ef_sod: bytes) -> int:
    """Where the SignerInfo's signature value starts in EF.SOD (it is the last element)."""
    signature = cms.parse(sod_content(ef_sod)).signature
    assert ef_sod.endswith(signature)
    return len(ef_sod) - len(signature)


# --------------------------------------------------------------------------- foreign PKIs


def _name(country: str, cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _digest(name: str):
    return {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384}[name]()


def raw_sign(key, data: bytes, hash_name: str = "sha256", pss: bool = False) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        h = _digest(hash_name)
        pad = padding.PSS(padding.MGF1(h), 32) if pss else padding.PKCS1v15()
        return key.sign(data, pad, h)
    return key.sign(data, ec.ECDSA(_digest(hash_name)))


def cms_algorithm(key, hash_name: str = "sha256") -> dict:
    family = "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ecdsa"
    return {"algorithm": f"{hash_name}_{family}"}


@dataclass
class ForeignPki:
    """A foreign country's CSCA and one Document Signer, made with ``cryptography`` alone."""

    country: str
    csca_key: object
    csca_der: bytes
    dsc_key: object
    dsc_der: bytes
    hash_name: str = "sha256"

    @property
    def cert_hash(self) -> str:
        return "sha256" if self.hash_name == "sha1" else self.hash_name

    @property
    def csca_pem(self) -> bytes:
        return x509.load_der_x509_certificate(self.csca_der).public_bytes(serialization.Encoding.PEM)

    @property
    def dsc_serial(self) -> int:
        return certs.parse_certificate(self.dsc_der).serial

    def sign_sod(self, dg_files: dict[int, bytes], *, hash_algorithm: str | None = None,
                 signature_algorithm: dict | None = None) -> bytes:
        h = hash_algorithm or self.hash_name
        return sod.build(dg_files, certificate=self.dsc_der, sign=lambda d: raw_sign(self.dsc_key, d, h),
                         signature_algorithm=signature_algorithm or cms_algorithm(self.dsc_key, h),
                         hash_algorithm=h)

    def passport(self, **kw) -> dict[int, bytes]:
        """A foreign chip: DG1 (the ICAO specimen MRZ), DG2 (a face), EF.SOD."""
        files = {1: dg1.encode(UTOPIA_TD3),
                 2: dg2.encode(b"\xff\xd8\xff\xe0" + os.urandom(200) + b"\xff\xd9", width=240, height=320)}
        return {**files, -1: self.sign_sod(files, **kw)}

    def issue(self, key, cn: str, *, extra=(), not_after: dt.datetime | None = None) -> bytes:
        """A certificate under this CSCA (a Master List Signer, another DSC)."""
        return _issued(self.csca_der, self.csca_key, key, self.country, cn, extra=extra,
                       hash_name=self.cert_hash, not_after=not_after)

    def master_list(self, cscas: list[bytes] | None = None, *, eku: str | None = "2.23.136.1.1.3",
                    eku_critical: bool = True) -> bytes:
        """A master list signed by a new Master List Signer (its EKU as ICAO 9303-12 says unless told)."""
        key = ec.generate_private_key(ec.SECP256R1())
        extra = [(x509.ExtendedKeyUsage([x509.ObjectIdentifier(eku)]), eku_critical)] if eku else []
        mls = self.issue(key, "Master List Signer", extra=extra)
        return masterlist.build(cscas or [self.csca_der], certificate=mls,
                                sign=lambda d: raw_sign(key, d), signature_algorithm=cms_algorithm(key),
                                digest_algorithm="sha256")

    def crl(self, revoked_serials: list[int]) -> bytes:
        csca = x509.load_der_x509_certificate(self.csca_der)
        t = now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(csca.subject)
                   .last_update(t).next_update(t + dt.timedelta(days=90))
                   .add_extension(x509.CRLNumber(1), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                       csca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value),
                       critical=False))
        for serial in revoked_serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(t).build())
        return builder.sign(self.csca_key, _digest(self.cert_hash)).public_bytes(serialization.Encoding.DER)


def _csca_builder(key, country: str) -> x509.CertificateBuilder:
    t = now() - dt.timedelta(days=1)
    subject = _name(country, f"CSCA {country}")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(t).not_valid_after(t + dt.timedelta(days=365 * 15))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(ski, critical=False))


def _issued(issuer_der: bytes, issuer_key, key, country: str, cn: str, *, extra=(), hash_name="sha256",
            not_after: dt.datetime | None = None) -> bytes:
    issuer = x509.load_der_x509_certificate(issuer_der)
    issuer_ski = certs.parse_certificate(issuer_der).subject_key_id
    t = now() - dt.timedelta(days=1)
    builder = (x509.CertificateBuilder().subject_name(_name(country, cn)).issuer_name(issuer.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(t).not_valid_after(not_after or t + dt.timedelta(days=365 * 11))
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier(issuer_ski, None, None), critical=False))
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, _digest(hash_name)).public_bytes(serialization.Encoding.DER)


def with_explicit_curve(cert_der: bytes, subject_key: ec.EllipticCurvePrivateKey, issuer_key,
                        hash_name: str = "sha256") -> bytes:
    """The certificate with its EC public key written with explicit curve parameters, re-signed
    by ``issuer_key`` (as many real CSCAs and DSCs are encoded)."""
    cert = asn1_x509.Certificate.load(cert_der)
    tbs = asn1_x509.TbsCertificate.load(cert["tbs_certificate"].dump())
    tbs["subject_public_key_info"] = asn1_keys.PublicKeyInfo.load(certs.explicit_spki(subject_key.public_key()))
    tbs_der = tbs.dump(force=True)
    signature = raw_sign(issuer_key, tbs_der, hash_name)
    return asn1_x509.Certificate({
        "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
        "signature_algorithm": cms_algorithm(issuer_key, hash_name),
        "signature_value": signature,
    }).dump()


def foreign_pki(kind: str = "ec", country: str = "UT", *, explicit: bool = False,
                hash_name: str = "sha256", rsa_key=None) -> ForeignPki:
    """``kind``: ec (P-256), brainpool (brainpoolP256r1) or rsa (``rsa_key`` for both, to save time)."""
    if kind == "rsa":
        csca_key = rsa_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        dsc_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        curve = ec.BrainpoolP256R1 if kind == "brainpool" else ec.SECP256R1
        csca_key = ec.generate_private_key(curve())
        dsc_key = ec.generate_private_key(curve())
    cert_hash = "sha256" if hash_name == "sha1" else hash_name  # cryptography signs no SHA-1 certificate
    csca_der = _csca_builder(csca_key, country).sign(csca_key, _digest(cert_hash)).public_bytes(
        serialization.Encoding.DER)
    if explicit:
        csca_der = with_explicit_curve(csca_der, csca_key, csca_key, cert_hash)
    dsc_der = _issued(csca_der, csca_key, dsc_key, country, "Document Signer", hash_name=cert_hash)
    if explicit:
        dsc_der = with_explicit_curve(dsc_der, dsc_key, csca_key, cert_hash)
    return ForeignPki(country, csca_key, csca_der, dsc_key, dsc_der, hash_name)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
