"""Keys, signatures and the trust store for passive authentication (ICAO 9303 Part 11 s.5, Part 12).

Real eMRTD PKIs use every kind of key: RSA with PKCS#1 v1.5 or PSS, ECDSA over NIST or Brainpool
curves, and, often, EC keys whose curve is written out as explicit parameters instead of a named
curve. ``cryptography`` refuses explicit parameters, so :func:`load_public_key` recognises them
(by comparing p, a, b, G and n with the known curves) and loads the named equivalent; a curve
``cryptography`` lacks (brainpoolP224r1, say) is verified by the pure-Python ``ecdsa`` package.

Certificates are matched by key identifiers (a DSC's Authority Key Identifier against a CSCA's
Subject Key Identifier), never by names.

>>> from cryptography.hazmat.primitives.asymmetric import ec
>>> from cryptography.hazmat.primitives import hashes, serialization
>>> key = ec.generate_private_key(ec.BrainpoolP256R1())
>>> spki = explicit_spki(key.public_key())       # as many real CSCAs encode it
>>> sig = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
>>> load_public_key(spki).verify(sig, b"data", scheme="ecdsa", hash_name="sha256")
True
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
from dataclasses import dataclass, field

from asn1crypto import algos, crl as asn1_crl, keys, x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils as asym_utils

from dinhdanh.ids.exceptions import InvalidFormat

__all__ = [
    "CertificateError", "PublicKey", "load_public_key", "explicit_spki", "signature_scheme",
    "verify_signature", "Certificate", "parse_certificate", "TrustStore", "ChainResult",
]


class CertificateError(InvalidFormat):
    """A certificate, CRL or key is malformed or unusable."""

    message = "The certificate is malformed."


_HASHES = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}
_HASHLIB = {"sha1": hashlib.sha1, "sha224": hashlib.sha224, "sha256": hashlib.sha256,
            "sha384": hashlib.sha384, "sha512": hashlib.sha512}

# BSI TR-03111 plain ECDSA (signature = r || s), used by some German-made chips.
_ECDSA_PLAIN = {
    "0.4.0.127.0.7.1.1.4.1.1": "sha1", "0.4.0.127.0.7.1.1.4.1.2": "sha224",
    "0.4.0.127.0.7.1.1.4.1.3": "sha256", "0.4.0.127.0.7.1.1.4.1.4": "sha384",
    "0.4.0.127.0.7.1.1.4.1.5": "sha512",
}

# Curves cryptography can load by name, keyed by their OpenSSL name in the ecdsa package.
_CRYPTOGRAPHY_CURVES = {
    "prime192v1": ec.SECP192R1, "secp224r1": ec.SECP224R1, "prime256v1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1, "secp521r1": ec.SECP521R1, "secp256k1": ec.SECP256K1,
    "brainpoolP256r1": ec.BrainpoolP256R1, "brainpoolP384r1": ec.BrainpoolP384R1,
    "brainpoolP512r1": ec.BrainpoolP512R1,
}


def hash_function(name: str):
    """hashlib constructor for a hash name (``sha1`` ... ``sha512``)."""
    try:
        return _HASHLIB[name]
    except KeyError:
        raise CertificateError(f"unsupported hash algorithm {name!r}") from None


# ---------------------------------------------------------------------------- public keys


class PublicKey:
    """A verification key, backed by ``cryptography`` or, for exotic curves, by ``ecdsa``."""

    __slots__ = ("kind", "_key", "_ecdsa", "bits")

    def __init__(self, kind: str, key=None, ecdsa_key=None, bits: int = 0):
        self.kind = kind  # "rsa" | "ec"
        self._key = key
        self._ecdsa = ecdsa_key
        self.bits = bits

    def verify(self, signature: bytes, data: bytes, *, scheme: str, hash_name: str,
               pss_salt: int | None = None, pss_mgf_hash: str | None = None) -> bool:
        """True when ``signature`` over ``data`` verifies; False for any mismatch or misfit."""
        try:
            algorithm = _HASHES[hash_name]()
        except KeyError:
            return False
        try:
            if self.kind == "rsa":
                if scheme == "rsa_pkcs1":
                    self._key.verify(signature, data, padding.PKCS1v15(), algorithm)
                elif scheme == "rsa_pss":
                    mgf = _HASHES[pss_mgf_hash or hash_name]()
                    salt = padding.PSS.AUTO if pss_salt is None else pss_salt
                    self._key.verify(signature, data, padding.PSS(padding.MGF1(mgf), salt), algorithm)
                else:
                    return False
                return True
            if scheme == "ecdsa_plain":
                signature = _plain_to_der(signature)
                if signature is None:
                    return False
            elif scheme != "ecdsa":
                return False
            if self._key is not None:
                self._key.verify(signature, data, ec.ECDSA(algorithm))
                return True
            import ecdsa.util

            return bool(self._ecdsa.verify(signature, data, hashfunc=_HASHLIB[hash_name],
                                           sigdecode=ecdsa.util.sigdecode_der))
        except (InvalidSignature, ValueError, TypeError):
            return False
        except Exception as exc:  # ecdsa raises its own BadSignatureError / der errors
            if type(exc).__module__.startswith("ecdsa"):
                return False
            raise


def _plain_to_der(signature: bytes) -> bytes | None:
    if not signature or len(signature) % 2:
        return None
    half = len(signature) // 2
    r = int.from_bytes(signature[:half], "big")
    s = int.from_bytes(signature[half:], "big")
    return asym_utils.encode_dss_signature(r, s)


@functools.lru_cache(maxsize=4096)
def load_public_key(spki_der: bytes) -> PublicKey:
    """Load a SubjectPublicKeyInfo (RSA, RSA-PSS, EC named or explicit) for verification."""
    try:
        return _load_public_key(spki_der)
    except CertificateError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # asn1crypto parses lazily: a damaged key surfaces as any of these, deep inside
        raise CertificateError(f"the public key is malformed: {exc!r}") from None


def _load_public_key(spki_der: bytes) -> PublicKey:
    try:
        info = keys.PublicKeyInfo.load(spki_der, strict=True)
        algorithm = info["algorithm"]["algorithm"].dotted
    except KeyError as exc:
        # asn1crypto knows no parameters for an algorithm OID it has not registered; which OIDs are
        # registered depends on what else the process imported (pyHanko adds some), so the answer
        # is worded the same either way
        raise CertificateError(f"unsupported public key algorithm {exc.args[0] if exc.args else '?'}") from None
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"the public key is not a SubjectPublicKeyInfo: {exc}") from None
    if algorithm in ("1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10"):
        try:
            numbers = info["public_key"].parsed
            key = rsa.RSAPublicNumbers(numbers["public_exponent"].native,
                                       numbers["modulus"].native).public_key()
        except (ValueError, TypeError) as exc:
            raise CertificateError(f"the RSA public key is malformed: {exc}") from None
        return PublicKey("rsa", key=key, bits=key.key_size)
    if algorithm != "1.2.840.10045.2.1":
        raise CertificateError(f"unsupported public key algorithm {algorithm}")
    try:
        params = info["algorithm"]["parameters"]
        point = bytes(info["public_key"])
        if params.name == "named":
            name = _curve_by_oid(params.chosen.dotted)
        elif params.name == "specified":
            name = _curve_by_parameters(params.chosen)
        else:
            raise CertificateError("EC public keys with implicit curve parameters are not supported")
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"the EC public key is malformed: {exc}") from None
    curve_cls = _CRYPTOGRAPHY_CURVES.get(name)
    if curve_cls is not None:
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve_cls(), point)
        except ValueError as exc:
            raise CertificateError(f"the EC point is not on curve {name}: {exc}") from None
        return PublicKey("ec", key=key, bits=key.curve.key_size)
    import ecdsa

    curve = next(c for c in ecdsa.curves.curves if c.openssl_name == name)
    try:
        vk = ecdsa.VerifyingKey.from_string(point, curve=curve)
    except Exception as exc:  # ecdsa's MalformedPointError and friends
        raise CertificateError(f"the EC point is not on curve {name}: {exc}") from None
    return PublicKey("ec", ecdsa_key=vk, bits=curve.baselen * 8)


def _curve_by_oid(oid: str) -> str:
    import ecdsa

    for curve in ecdsa.curves.curves:
        if ".".join(map(str, curve.oid)) == oid and curve.openssl_name:
            return curve.openssl_name
    raise CertificateError(f"unsupported named curve {oid}")


def _curve_by_parameters(domain) -> str:
    """Name the known curve whose explicit parameters these are (p, a, b, generator, order)."""
    import ecdsa

    field_type = domain["field_id"]["field_type"].native
    if field_type != "prime_field":
        raise CertificateError("EC curves over binary fields are not supported")
    p = domain["field_id"]["parameters"].native
    a = int.from_bytes(bytes(domain["curve"]["a"]), "big")
    b = int.from_bytes(bytes(domain["curve"]["b"]), "big")
    order = domain["order"].native
    base = bytes(domain["base"])
    for curve in ecdsa.curves.curves:
        if not curve.openssl_name or not hasattr(curve.curve, "p"):
            continue
        fp = curve.curve
        if (fp.p(), fp.a() % fp.p(), fp.b() % fp.p(), curve.order) != (p, a % p, b % p, order):
            continue
        generator = curve.generator
        gx = generator.x().to_bytes(curve.baselen, "big")
        gy = generator.y().to_bytes(curve.baselen, "big")
        if base in (b"\x04" + gx + gy, bytes([2 + (generator.y() & 1)]) + gx):
            return curve.openssl_name
    raise CertificateError("the EC public key uses explicit parameters of an unknown curve")


def explicit_spki(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """Encode an EC public key with explicit curve parameters, as many real CSCAs do."""
    import ecdsa

    point = public_key.public_bytes(serialization.Encoding.X962,
                                    serialization.PublicFormat.UncompressedPoint)
    name = public_key.curve.name
    curve = next(c for c in ecdsa.curves.curves if c.openssl_name.lower() == name.lower()
                 or c.openssl_name == {"secp256r1": "prime256v1", "secp192r1": "prime192v1"}.get(name))
    vk = ecdsa.VerifyingKey.from_string(point, curve=curve)
    return vk.to_der(curve_parameters_encoding="explicit")


# ------------------------------------------------------------------------ signature schemes


def signature_scheme(signature_algorithm: algos.SignedDigestAlgorithm,
                     digest_algorithm: str | None = None) -> tuple[str, str, int | None, str | None]:
    """(scheme, hash name, PSS salt length, PSS MGF hash) for an AlgorithmIdentifier.

    Chips often name only the key type (``rsaEncryption``, ``id-ecPublicKey``) as the signature
    algorithm and give the hash as the SignerInfo's digest algorithm: ``digest_algorithm`` fills
    that gap.
    """
    try:
        return _signature_scheme(signature_algorithm, digest_algorithm)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise CertificateError(f"the signature algorithm is malformed: {exc}") from None


def _signature_scheme(signature_algorithm, digest_algorithm):
    oid = signature_algorithm["algorithm"].dotted
    if oid in _ECDSA_PLAIN:
        return "ecdsa_plain", _ECDSA_PLAIN[oid], None, None
    name = signature_algorithm["algorithm"].native
    if name == "rsassa_pss":
        params = signature_algorithm["parameters"]
        hash_name = params["hash_algorithm"]["algorithm"].native
        mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
        return "rsa_pss", hash_name, params["salt_length"].native, mgf_hash
    if name in ("rsassa_pkcs1v15",) or oid == "1.2.840.113549.1.1.1":
        if not digest_algorithm:
            raise CertificateError("rsaEncryption as a signature algorithm needs a digest algorithm")
        return "rsa_pkcs1", digest_algorithm, None, None
    if name == "ecdsa" or oid == "1.2.840.10045.2.1":
        if not digest_algorithm:
            raise CertificateError("plain ECDSA as a signature algorithm needs a digest algorithm")
        return "ecdsa", digest_algorithm, None, None
    if isinstance(name, str) and "_" in name:
        hash_name, _, family = name.rpartition("_")
        if family == "rsa" and hash_name in _HASHES:
            return "rsa_pkcs1", hash_name, None, None
        if family == "ecdsa" and hash_name in _HASHES:
            return "ecdsa", hash_name, None, None
    raise CertificateError(f"unsupported signature algorithm {oid}")


@functools.lru_cache(maxsize=256)
def _scheme(signature_algorithm, digest_algorithm):
    # AlgorithmIdentifiers of SODs come from a cache keyed by their bytes: few distinct objects
    return signature_scheme(signature_algorithm, digest_algorithm)


def verify_signature(spki_der: bytes, signature_algorithm: algos.SignedDigestAlgorithm,
                     data: bytes, signature: bytes, digest_algorithm: str | None = None) -> bool:
    """Verify ``signature`` over ``data``; raises CertificateError only for unusable keys/algorithms."""
    scheme, hash_name, salt, mgf = _scheme(signature_algorithm, digest_algorithm)
    key = load_public_key(spki_der)
    if (key.kind == "rsa") != scheme.startswith("rsa"):
        return False
    return key.verify(signature, data, scheme=scheme, hash_name=hash_name, pss_salt=salt,
                      pss_mgf_hash=mgf)


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True, slots=True)
class Certificate:
    """The parts of an X.509 certificate that passive authentication needs."""

    der: bytes
    subject: str
    issuer: str
    serial: int
    not_before: _dt.datetime
    not_after: _dt.datetime
    subject_key_id: bytes | None
    authority_key_id: bytes | None
    spki: bytes
    is_ca: bool
    key_usage: frozenset[str] | None
    tbs: bytes = field(repr=False)
    signature_algorithm: algos.SignedDigestAlgorithm = field(repr=False)
    signature: bytes = field(repr=False)
    country: str | None = None
    issuer_der: bytes = field(default=b"", repr=False)  # DER of the issuer Name (CMS IssuerAndSerialNumber)
    extended_key_usage: frozenset[str] | None = None  # dotted OIDs; None without the extension

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest()


def parse_certificate(der: bytes) -> Certificate:
    """Parse a DER certificate (PEM accepted too); CertificateError naming the problem."""
    if der[:5] == b"-----":
        from asn1crypto import pem

        try:
            _, _, der = pem.unarmor(der)
        except ValueError as exc:
            raise CertificateError(f"not a PEM certificate: {exc}") from None
    return _parse_certificate(bytes(der))


@functools.lru_cache(maxsize=4096)
def _parse_certificate(der: bytes) -> Certificate:
    try:
        cert = x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        ski = cert.key_identifier
        aki = cert.authority_key_identifier
        usage = cert.key_usage_value
        extended = cert.extended_key_usage_value
        country = None
        for rdn in tbs["subject"].chosen:
            for attribute in rdn:
                if attribute["type"].native == "country_name":
                    country = attribute["value"].native
        validity = tbs["validity"]
        return Certificate(
            der=der, subject=tbs["subject"].human_friendly, issuer=tbs["issuer"].human_friendly,
            serial=tbs["serial_number"].native,
            not_before=validity["not_before"].native, not_after=validity["not_after"].native,
            subject_key_id=ski, authority_key_id=aki, spki=tbs["subject_public_key_info"].dump(),
            is_ca=bool(cert.ca), key_usage=frozenset(usage.native) if usage is not None else None,
            tbs=tbs.dump(), signature_algorithm=cert["signature_algorithm"],
            signature=bytes(cert["signature_value"]), country=country, issuer_der=tbs["issuer"].dump(),
            extended_key_usage=frozenset(p.dotted for p in extended) if extended is not None else None,
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise CertificateError(f"not an X.509 certificate: {exc}") from None


def _signed_by(cert: Certificate, issuer: Certificate) -> bool:
    try:
        return verify_signature(issuer.spki, cert.signature_algorithm, cert.tbs, cert.signature)
    except CertificateError:
        return False


# ----------------------------------------------------------------------------- trust store


@dataclass(frozen=True, slots=True)
class ChainResult:
    """The outcome of chaining a Document Signer to a trusted CSCA."""

    status: str  # "trusted" | "untrusted" | "invalid"
    reason: str
    csca: Certificate | None = None

    def as_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason,
                "csca": self.csca.subject if self.csca else None}


@dataclass(slots=True)
class _Crl:
    issuer_key_id: bytes | None
    revoked: dict[int, tuple[_dt.datetime | None, str | None]]
    this_update: _dt.datetime
    next_update: _dt.datetime | None


class TrustStore:
    """Trusted CSCA certificates and their CRLs: ours, foreign ones, or from master lists."""

    def __init__(self, cscas=(), crls=()):
        self._by_key_id: dict[bytes, list[Certificate]] = {}
        self._anchors: list[Certificate] = []
        self._crls: list[_Crl] = []
        self._chains: dict[bytes, tuple[str, str, Certificate | None]] = {}
        for der in cscas:
            self.add_csca(der)
        for der in crls:
            self.add_crl(der)

    def __len__(self) -> int:
        return len(self._anchors)

    @property
    def anchors(self) -> tuple[Certificate, ...]:
        return tuple(self._anchors)

    def add_csca(self, der: bytes) -> Certificate:
        cert = parse_certificate(der)
        if any(a.der == cert.der for a in self._anchors):
            return cert
        self._anchors.append(cert)
        if cert.subject_key_id:
            self._by_key_id.setdefault(cert.subject_key_id, []).append(cert)
        self._chains.clear()
        return cert

    def add_master_list(self, raw: bytes) -> int:
        """Trust every CSCA of a CSCA master list (its own signature checked); returns the count."""
        from dinhdanh.ids.lds import masterlist

        certificates = masterlist.verify(raw)
        for der in certificates:
            self.add_csca(der)
        return len(certificates)

    def add_crl(self, der: bytes) -> None:
        """Add a CRL; it counts only when its signature verifies against a trusted CSCA."""
        try:
            crl = asn1_crl.CertificateList.load(der, strict=True)
            tbs = crl["tbs_cert_list"]
            aki = crl.authority_key_identifier
            issuers = self._by_key_id.get(aki, []) if aki else list(self._anchors)
            data = tbs.dump()
            signature = bytes(crl["signature"])
            issuer = next((a for a in issuers if _safe_verify(a.spki, crl["signature_algorithm"],
                                                              data, signature)), None)
            if issuer is None:
                raise CertificateError("the CRL is not signed by a trusted CSCA")
            revoked: dict[int, tuple[_dt.datetime | None, str | None]] = {}
            for entry in tbs["revoked_certificates"]:
                reason = None
                for ext in entry["crl_entry_extensions"]:
                    if ext["extn_id"].native == "crl_reason":
                        reason = ext["extn_value"].native
                revoked[entry["user_certificate"].native] = (entry["revocation_date"].native, reason)
            next_update = tbs["next_update"].native if tbs["next_update"] else None
            self._crls.append(_Crl(issuer.subject_key_id, revoked, tbs["this_update"].native,
                                   next_update))
            self._chains.clear()
        except (ValueError, TypeError, KeyError) as exc:
            raise CertificateError(f"not a CRL: {exc}") from None

    def revocation(self, cert: Certificate, issuer: Certificate):
        for crl in self._crls:
            if crl.issuer_key_id == issuer.subject_key_id and cert.serial in crl.revoked:
                return crl.revoked[cert.serial]
        return None

    def chain(self, dsc: Certificate, at: _dt.datetime) -> ChainResult:
        """Chain a Document Signer certificate to a trusted CSCA at time ``at``."""
        cached = self._chains.get(dsc.der)
        if cached is None:
            cached = self._chain_uncached(dsc)
            self._chains[dsc.der] = cached
        status, reason, csca = cached
        if status != "trusted":
            return ChainResult(status, reason, csca)
        if at < dsc.not_before:
            return ChainResult("invalid", f"the Document Signer certificate is not valid before "
                               f"{dsc.not_before:%Y-%m-%d}", csca)
        if at > dsc.not_after:
            return ChainResult("invalid", f"the Document Signer certificate expired on "
                               f"{dsc.not_after:%Y-%m-%d}", csca)
        if not (csca.not_before <= at <= csca.not_after):
            return ChainResult("invalid", f"the CSCA certificate is not valid on {at:%Y-%m-%d}", csca)
        return ChainResult(status, reason, csca)

    def _chain_uncached(self, dsc: Certificate) -> tuple[str, str, Certificate | None]:
        if dsc.authority_key_id:
            candidates = self._by_key_id.get(dsc.authority_key_id, [])
            if not candidates:
                return ("untrusted", "no trusted CSCA has the key identifier "
                        f"{dsc.authority_key_id.hex()} named by the Document Signer", None)
        else:
            candidates = self._anchors
        csca = next((c for c in candidates if _signed_by(dsc, c)), None)
        if csca is None:
            if not dsc.authority_key_id:
                return ("untrusted", "the Document Signer names no authority key identifier "
                        "and no trusted CSCA signed it", None)
            return ("invalid", "the Document Signer certificate's signature does not verify "
                    "against the CSCA with its key identifier", candidates[0])
        if dsc.key_usage is not None and "digital_signature" not in dsc.key_usage:
            return ("invalid", "the Document Signer certificate is not for digital signatures", csca)
        revoked = self.revocation(dsc, csca)
        if revoked is not None:
            when, reason = revoked
            detail = f" ({reason})" if reason else ""
            on = f" on {when:%Y-%m-%d}" if when else ""
            return ("invalid", f"the Document Signer certificate was revoked{on}{detail}", csca)
        return ("trusted", f"signed by the trusted CSCA {csca.subject}", csca)


def _safe_verify(spki: bytes, algorithm, data: bytes, signature: bytes) -> bool:
    try:
        return verify_signature(spki, algorithm, data, signature)
    except CertificateError:
        return False


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)
