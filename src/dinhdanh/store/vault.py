"""Encryption at rest for secrets and biometrics: private keys, chip keys, face images.

Envelope encryption with one 256-bit master key: each value is sealed with AES-256-GCM under a
fresh 96-bit nonce, its purpose bound as associated data (a DG2 blob cannot be passed off as a
private key). The master key comes from ``DINHDANH_MASTER_KEY`` (base64 of 32 bytes), or from a
key file (0600) that ``for_database`` creates next to an SQLite database on first use. In
production the master key lives in a KMS or HSM and is handed to the process at start.

``mac(data, purpose)`` is a keyed hash (HMAC-SHA-256) under a key derived from the master key for
that purpose (HKDF-SHA-256, the purpose as ``info``): for values only ever compared, never read back
(activation codes), so that a stolen table cannot be reversed by hashing every possible value
without the master key. The master key itself never leaves the vault.

>>> vault = Vault(bytes(32))
>>> vault.open(vault.seal(b"secret", "dg2"), "dg2")
b'secret'
>>> vault.mac(b"123456", "eid-code") == vault.mac(b"123456", "eid-code") != vault.mac(b"123456", "other")
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from dinhdanh.store.files import private_dir, private_file

__all__ = ["Vault", "VaultError", "master_key_from_env", "for_database", "of_bind"]

_VERSION = b"\x01"
ENV = "DINHDANH_MASTER_KEY"


class VaultError(Exception):
    """A sealed value cannot be opened (wrong key, wrong purpose, or tampered)."""


class Vault:
    __slots__ = ("_aead", "_mac_root", "_mac_keys")

    def __init__(self, master_key: bytes):
        if len(master_key) != 32:
            raise VaultError("the master key must be 32 bytes (256 bits)")
        self._aead = AESGCM(master_key)
        # the pseudorandom root of the MAC keys (HKDF-Extract then -Expand per purpose): the AES key
        # is never used as an HMAC key, nor kept anywhere but inside AESGCM
        self._mac_root = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"dinhdanh vault mac",
                              info=b"root").derive(master_key)
        self._mac_keys: dict[str, bytes] = {}

    def mac(self, data: bytes, purpose: str) -> bytes:
        """HMAC-SHA-256 of ``data`` under the key derived for ``purpose`` (32 bytes)."""
        key = self._mac_keys.get(purpose)
        if key is None:
            key = HKDFExpand(algorithm=hashes.SHA256(), length=32,
                             info=b"mac:" + purpose.encode()).derive(self._mac_root)
            self._mac_keys[purpose] = key
        return hmac.new(key, data, hashlib.sha256).digest()

    def seal(self, plaintext: bytes, purpose: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, purpose.encode())

    def open(self, sealed: bytes, purpose: str) -> bytes:
        if not sealed or sealed[:1] != _VERSION or len(sealed) < 29:
            raise VaultError("not a sealed value")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], purpose.encode())
        except InvalidTag:
            raise VaultError(f"the sealed {purpose} does not open with this master key") from None


def master_key_from_env() -> bytes | None:
    value = os.environ.get(ENV)
    if not value:
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError:
        raise VaultError(f"{ENV} is not base64") from None
    if len(key) != 32:
        raise VaultError(f"{ENV} must hold 32 bytes in base64")
    return key


def for_database(url: str) -> Vault:
    """The vault for a database: the environment's master key, else the key file beside SQLite."""
    key = master_key_from_env()
    if key is not None:
        return Vault(key)
    if not url.startswith("sqlite"):
        raise VaultError(f"set {ENV} (base64 of 32 random bytes) to use a server database")
    path = url.split("///", 1)[-1] if "///" in url else ""
    if not path or path == ":memory:" or path.startswith("file::memory:"):
        return Vault(os.urandom(32))  # an in-memory database dies with the process: so may its key
    key_file = Path(path).with_name(Path(path).name + ".master-key")
    if not key_file.exists():
        if not key_file.parent.exists():
            private_dir(key_file.parent)  # a folder made for the key (an existing one is left as it is)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64encode(os.urandom(32)) + b"\n")
    private_file(key_file)  # a key file left readable by an older version is narrowed to 0600
    key = base64.b64decode(key_file.read_bytes().strip())
    return Vault(key)


_bound: dict[str, Vault] = {}


def of_bind(bind) -> Vault:
    """The vault of the database behind an engine or connection (``for_database`` of its URL),
    cached per URL: an in-memory database's random key stays the same for the process's life."""
    engine = getattr(bind, "engine", bind)
    url = engine.url.render_as_string(hide_password=False)
    vault = _bound.get(url)
    if vault is None:
        vault = _bound[url] = for_database(url)
    return vault
