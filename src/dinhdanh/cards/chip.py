"""A produced card as files: the chip's files, the CSCA certificate and the card's two faces.

The platform also acts as the chip for Active Authentication (the card's private key is sealed in
the vault), so demos and tests can run the full verification a bank's reader would.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dinhdanh.cards import artwork
from dinhdanh.ids.lds import aa, dg2
from dinhdanh.store.vault import Vault

__all__ = ["CHIP_FILE_NAMES", "chip_files", "write_card", "read_chip_dir", "respond_to_challenge"]

# The file names of ``dinhdanh card export`` / ``card verify``, and the report's DG names.
CHIP_FILE_NAMES = {"EF.COM": "EF.COM", "DG1": "DG1.bin", "DG2": "DG2.bin", "DG13": "DG13.bin",
                   "DG14": "DG14.bin", "DG15": "DG15.bin", "EF.SOD": "EF.SOD"}


def chip_files(card, vault: Vault) -> dict[str, bytes]:
    return {"EF.COM": card.ef_com, "DG1": card.dg1, "DG2": vault.open(card.dg2, "dg2"), "DG13": card.dg13,
            "DG14": card.dg14, "DG15": card.dg15, "EF.SOD": card.sod}


def write_card(card, vault: Vault, csca_der: bytes, out: Path) -> list[str]:
    """Write the chip files, ``csca.pem`` and ``front.png`` / ``back.png``; returns the names."""
    out.mkdir(parents=True, exist_ok=True)
    files = chip_files(card, vault)
    written = []
    for name, raw in files.items():
        (out / CHIP_FILE_NAMES[name]).write_bytes(raw)
        written.append(CHIP_FILE_NAMES[name])
    pem = x509.load_der_x509_certificate(csca_der).public_bytes(serialization.Encoding.PEM)
    (out / "csca.pem").write_bytes(pem)
    photo = dg2.decode(files["DG2"]).image
    (out / "front.png").write_bytes(artwork.render_front(card.printed, photo, card.qr))
    (out / "back.png").write_bytes(artwork.render_back(card.printed, card.mrz.split("\n"), card.qr))
    return written + ["csca.pem", "front.png", "back.png"]


def read_chip_dir(folder: Path) -> dict[str, bytes]:
    """The chip files found in ``folder`` (named as ``card export`` writes them), by DG name."""
    found = {}
    for name, filename in CHIP_FILE_NAMES.items():
        path = folder / filename
        if path.is_file():
            found[name] = path.read_bytes()
    for path in sorted(folder.glob("DG*.bin")):
        name = path.stem.upper()
        found.setdefault(name, path.read_bytes())
    return found


def respond_to_challenge(card, vault: Vault, challenge: bytes) -> bytes:
    """What the card's chip answers to an Active Authentication challenge."""
    key = serialization.load_der_private_key(vault.open(card.chip_key, "chip-key"), password=None)
    return aa.sign(key, challenge, hash_name="sha256")
