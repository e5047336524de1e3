"""Encryption at rest for secrets and biometrics: private keys, chip keys, face images.

Envelope encryption with one 256-bit master key: each value is sealed with AES-256-GCM under a
fresh 96-bit nonce, its purpose bound as associated data (a DG2 blob cannot be passed off as a
private key). The master key comes from ``DINHDANH_MASTER_KEY`` (base64 of 32 bytes), or from a
key file (0600) that ``for_database`` creates next to an SQLite database on first use. In
production the master key lives in a KMS or HSM and is handed to the process at start.

>>> vault = Vault(bytes(32))
>>> vault.open(vault.seal(b"secret", "dg2"), "dg2")
b'secret'
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Vault", "VaultError", "master_key_from_env", "for_database"]

_VERSION = b"\x01"
ENV = "DINHDANH_MASTER_KEY"


class VaultError(Exception):
    """A sealed value cannot be opened (wrong key, wrong purpose, or tampered)."""


class Vault:
    __slots__ = ("_aead",)

    def __init__(self, master_key: bytes):
        if len(master_key) != 32:
            raise VaultError("the master key must be 32 bytes (256 bits)")
        self._aead = AESGCM(master_key)

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
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64encode(os.urandom(32)) + b"\n")
    key = base64.b64decode(key_file.read_bytes().strip())
    return Vault(key)
