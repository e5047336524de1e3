"""Keys that sign for the platform: generation, the :class:`Signer` protocol and its software
implementation opened from the vault, the log of every use, and the certificate plumbing every
CA of ours shares (names, signing a certificate, storing a key, the active key of a role)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from dinhdanh.pki.tables import pki_key_uses, pki_keys
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

__all__ = ["ALGORITHMS", "Signer", "SoftwareSigner", "generate_key", "hash_for", "log_use", "open_signer",
           "forget_signers", "x509_name", "sign_certificate", "store_key", "active_key"]

ALGORITHMS = ("ecdsa-p256", "ecdsa-p384", "brainpool-p256", "brainpool-p384", "rsa-pss-3072", "rsa-3072")

_CURVES = {"ecdsa-p256": ec.SECP256R1, "ecdsa-p384": ec.SECP384R1,
           "brainpool-p256": ec.BrainpoolP256R1, "brainpool-p384": ec.BrainpoolP384R1}


def hash_for(algorithm: str) -> str:
    return "sha384" if algorithm.endswith("p384") else "sha256"


def generate_key(algorithm: str):
    if algorithm in _CURVES:
        return ec.generate_private_key(_CURVES[algorithm]())
    if algorithm in ("rsa-pss-3072", "rsa-3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise InvalidInput(f"Unknown key algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}.",
                       field="algorithm")


class Signer(Protocol):
    """What signs for the PKI. A PKCS#11 signer keeps the key in the HSM and implements the same."""

    key_id: int
    algorithm: str
    certificate: bytes  # DER
    hash_algorithm: str
    signature_algorithm: dict  # CMS AlgorithmIdentifier, asn1crypto form

    def sign(self, conn: sa.Connection, data: bytes, *, purpose: str, reference: str) -> bytes: ...


@dataclass(slots=True)
class SoftwareSigner:
    """A private key held in process memory, opened from the vault."""

    key_id: int
    algorithm: str
    certificate: bytes
    private_key: object

    @property
    def hash_algorithm(self) -> str:
        return hash_for(self.algorithm)

    @property
    def signature_algorithm(self) -> dict:
        h = self.hash_algorithm
        if self.algorithm == "rsa-pss-3072":
            return {"algorithm": "rsassa_pss", "parameters": {
                "hash_algorithm": {"algorithm": h},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": h}},
                "salt_length": 32 if h == "sha256" else 48, "trailer_field": "trailer_field_bc"}}
        if self.algorithm == "rsa-3072":
            return {"algorithm": f"{h}_rsa"}
        return {"algorithm": f"{h}_ecdsa"}

    def raw_sign(self, data: bytes) -> bytes:
        algorithm = hashes.SHA384() if self.hash_algorithm == "sha384" else hashes.SHA256()
        if self.algorithm == "rsa-pss-3072":
            salt = 32 if self.hash_algorithm == "sha256" else 48
            return self.private_key.sign(data, padding.PSS(padding.MGF1(algorithm), salt), algorithm)
        if self.algorithm == "rsa-3072":
            return self.private_key.sign(data, padding.PKCS1v15(), algorithm)
        return self.private_key.sign(data, ec.ECDSA(algorithm))

    def sign(self, conn: sa.Connection, data: bytes, *, purpose: str, reference: str) -> bytes:
        signature = self.raw_sign(data)
        log_use(conn, self.key_id, purpose, reference, data)
        return signature


def log_use(conn: sa.Connection, key_id: int, purpose: str, reference: str, data: bytes) -> None:
    conn.execute(pki_key_uses.insert().values(
        key_id=key_id, used_at=utcnow(), purpose=purpose, reference=reference[:80],
        digest=hashlib.sha256(data).hexdigest()))


_signers: dict[tuple[int, bytes], SoftwareSigner] = {}


def open_signer(row, vault: Vault) -> SoftwareSigner:
    """The signer of a ``pki_keys`` row, its key opened from the vault (kept open in the process)."""
    # keyed by the sealed key itself (a fresh nonce each time a key is sealed): a rolled-back
    # key or another database's key with the same key_id can never come back from the cache
    cache_key = (id(vault), row.private_key)
    signer = _signers.get(cache_key)
    if signer is None:
        der = vault.open(row.private_key, f"pki-key:{row.key_id}")
        key = serialization.load_der_private_key(der, password=None)
        signer = SoftwareSigner(row.key_id, row.algorithm, row.certificate, key)
        if len(_signers) > 256:
            _signers.clear()
        _signers[cache_key] = signer
    return signer


def forget_signers() -> None:
    """Close every opened key (after a revocation: nothing signs with it from memory)."""
    _signers.clear()


def x509_name(country: str, organization: str, common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def root_ca_builder(subject: x509.Name, public_key, *, now, not_after) -> x509.CertificateBuilder:
    """A self-signed CA's certificate before its signature: the profile the CSCA and the documents CA
    share (CA, path length 0, keyCertSign and cRLSign only, critical; SKI = AKI); callers add theirs."""
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(public_key).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )


def sign_certificate(builder: x509.CertificateBuilder, issuer: SoftwareSigner | None, key,
                     algorithm: str) -> x509.Certificate:
    """Self-signed when ``issuer`` is None."""
    signing_key = issuer.private_key if issuer else key
    signing_alg = issuer.algorithm if issuer else algorithm
    digest = hashes.SHA384() if hash_for(signing_alg) == "sha384" else hashes.SHA256()
    if signing_alg == "rsa-pss-3072":
        salt = 48 if isinstance(digest, hashes.SHA384) else 32
        return builder.sign(signing_key, digest, rsa_padding=padding.PSS(padding.MGF1(digest), salt))
    return builder.sign(signing_key, digest)


def store_key(conn, vault: Vault, *, role: str, algorithm: str, cert: x509.Certificate, key,
              issuer_id: int | None, usage_ends: dt.datetime, agency: str | None = None) -> int:
    """Keep a key and its certificate; the private key sealed under its own key id."""
    key_id = conn.execute(pki_keys.insert().values(
        role=role, algorithm=algorithm, issuer_id=issuer_id, subject=cert.subject.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        key_identifier=cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex(),
        certificate=cert.public_bytes(serialization.Encoding.DER), private_key=b"",
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, usage_ends=usage_ends,
        status="active", created_at=utcnow(), agency=agency,
    ).returning(pki_keys.c.key_id)).scalar_one()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    conn.execute(pki_keys.update().where(pki_keys.c.key_id == key_id)
                 .values(private_key=vault.seal(der, f"pki-key:{key_id}")))
    return key_id


def active_key(conn, role: str, *, agency: str | None = None):
    """The newest active key of ``role`` (of ``agency``, for document signers), or None."""
    query = sa.select(pki_keys).where(pki_keys.c.role == role, pki_keys.c.status == "active")
    if agency is not None:
        query = query.where(pki_keys.c.agency == agency)
    return conn.execute(query.order_by(pki_keys.c.key_id.desc())).first()
