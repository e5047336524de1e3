"""``dinhdanh mrz|qr|pki|card`` end to end, each command in a subprocess as an operator runs it.

Few tests, each running several commands (a subprocess costs about a second), on a temporary
SQLite file. The vault's master key comes from ``DINHDANH_MASTER_KEY``, which tests/conftest.py
sets for the whole session, so these tests can open the same sealed keys in-process.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dinhdanh.cards import chip
from dinhdanh.ids import qr
from dinhdanh.store.engine import make_engine
from dinhdanh.store.vault import for_database
from tests import chips
from tests.chips import AN, DUC
from tests.support import FAMILY, write_people

VECTORS = Path("/work/shared/vectors/icao9303-public.json")
PNG = b"\x89PNG\r\n\x1a\n"


class Cli:
    def __init__(self, home: Path):
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if k != "DINHDANH_DATABASE_URL"}
        self.env["DINHDANH_HOME"] = str(home)
        self.env["PYTHONIOENCODING"] = "utf-8"

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dinhdanh", *args], capture_output=True, text=True,
                              encoding="utf-8", env=self.env, cwd=self.home, input=input, timeout=180)

    def json(self, *args: str, code: int = 0, **kw):
        p = self(*args, **kw)
        assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr, p.stderr
        return json.loads(p.stdout)


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def db(cli, tmp_path) -> str:
    """A SQLite file with FAMILY and the national PKI, made by the commands themselves."""
    url = f"sqlite:///{tmp_path / 'cards.sqlite'}"
    report = cli.json("population", "import", str(write_people(tmp_path / "family.csv", FAMILY)), "--db", url)
    assert report["loaded"] == len(FAMILY)
    made = cli.json("pki", "init", "--db", url)
    assert (made["algorithm"], made["subject"]) == ("ecdsa-p256", "CN=CSCA VN,O=Bo Cong An,C=VN")
    return url


# ------------------------------------------------------------------------------------------ mrz


def test_mrz_check_the_icao_specimen_a_broken_digit_and_garbage(cli):
    vector = json.loads(VECTORS.read_text())["td1_specimen"]
    lines = vector["lines"]
    out = cli.json("mrz", "check", *lines)
    assert out["valid"] is True and out["errors"] == []
    assert (out["format"], out["document_code"], out["issuing_state"]) == ("TD1", "I", "UTO")
    assert (out["document_number"], out["date_of_birth"], out["sex"], out["expiry_date"], out["nationality"]) == (
        vector["document_number"], vector["date_of_birth"], vector["sex"], vector["expiry"], vector["nationality"])
    assert (out["surname"], out["given_names"], out["pid"]) == (vector["surname"], vector["given_names"], None)
    assert lines[1][29] == str(vector["composite_check_digit"])

    # the date of birth's check digit 2 made 3, read from stdin: it and the composite fail
    broken = lines[1][:6] + "3" + lines[1][7:]
    out = cli.json("mrz", "check", input="\n".join([lines[0], broken, lines[2]]) + "\n", code=1)
    assert out["valid"] is False
    assert out["errors"] == [{"check": "date_of_birth", "expected": "2", "found": "3"},
                             {"check": "composite", "expected": "9", "found": "6"}]

    garbage = cli("mrz", "check", "hello world")
    assert garbage.returncode == 2 and garbage.stdout == "", garbage
    assert garbage.stderr.startswith("error: ") and "not an MRZ character" in garbage.stderr
    assert len(garbage.stderr.strip().splitlines()) == 1 and "Traceback" not in garbage.stderr


# ------------------------------------------------------------------------------------------- qr


def test_qr_parse_text_and_a_rendered_png(cli, tmp_path):
    text = "001085000001|123456789|Nguyễn Văn An|04031985|Nam|Phường Hoàn Kiếm, Thành phố Hà Nội|01072021"
    expected = {"pid": AN, "old_id": "123456789", "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04",
                "sex": "Nam", "address": "Phường Hoàn Kiếm, Thành phố Hà Nội", "issue_date": "2021-07-01",
                "layout": "cccd-2021", "extra": []}
    assert cli.json("qr", "parse", text) == expected
    png = tmp_path / "qr.png"
    p = cli("qr", "render", text, "--out", str(png))
    assert p.returncode == 0 and p.stdout.strip() == str(png), p
    assert png.read_bytes()[:8] == PNG
    assert qr.read_image(png.read_bytes()) == text  # what was drawn is what was asked
    assert cli.json("qr", "parse", str(png)) == expected


# ---------------------------------------------------------------------------------------- cards


def test_card_issue_export_and_verify_with_active_authentication(cli, db, tmp_path):
    card = cli.json("card", "issue", AN, "--db", db)
    assert (card["status"], card["card_number"]) == ("issued", AN)
    folder = tmp_path / "card"
    exported = cli.json("card", "export", AN, "--out", str(folder), "--db", db)
    names = ["EF.COM", "DG1.bin", "DG2.bin", "DG13.bin", "DG14.bin", "DG15.bin", "EF.SOD", "csca.pem",
             "front.png", "back.png"]
    assert exported == {"folder": str(folder), "files": names}
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    for face in ("front.png", "back.png"):
        assert (folder / face).read_bytes()[:8] == PNG
    assert (folder / "csca.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert (folder / "EF.SOD").read_bytes()[:1] == b"\x77"

    report = cli.json("card", "verify", str(folder), "--active-authentication", "--db", db)
    assert (report["verdict"], report["failures"]) == ("valid", [])
    assert report["active_authentication"]["status"] == "passed"
    assert report["register"]["card"] == "current" and report["register"]["card_number"] == AN

    # a challenge and the chip's answer given on the command line; then a wrong answer
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            from dinhdanh.cards import lifecycle

            row = lifecycle.card_of(conn, chips.NATIONAL, AN)
        challenge = os.urandom(8)
        response = chip.respond_to_challenge(row, for_database(db), challenge)
    finally:
        engine.dispose()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    report = cli.json("card", "verify", str(folder), "--challenge", b64(challenge), "--response", b64(response),
                      "--db", db)
    assert (report["verdict"], report["active_authentication"]["status"]) == ("valid", "passed")
    report = cli.json("card", "verify", str(folder), "--challenge", b64(challenge), "--response",
                      b64(os.urandom(64)), "--db", db, code=1)
    assert [f["check"] for f in report["failures"]] == ["active_authentication"]

    # one bit of DG13 flipped: exit 1, the report names the data group
    dg13 = folder / "DG13.bin"
    dg13.write_bytes(chips.flip(dg13.read_bytes(), len(dg13.read_bytes()) // 2))
    report = cli.json("card", "verify", str(folder), "--db", db, code=1)
    assert report["verdict"] == "invalid"
    assert report["failures"] == [{"check": "data_groups", "reason": "the hash of DG13 differs from the SOD's"}]
    assert report["data_groups"]["DG13"] == "mismatch"

    listing = cli.json("card", "list", AN, "--db", db)
    assert [c["status"] for c in listing["cards"]] == ["issued"]


def test_card_verify_of_a_foreign_chip_and_trust_add(cli, db, tmp_path):
    foreign = chips.foreign_pki("brainpool", "DE", explicit=True)
    folder = tmp_path / "passport"
    folder.mkdir()
    for n, raw in foreign.passport().items():
        (folder / ("EF.SOD" if n == -1 else f"DG{n}.bin")).write_bytes(raw)
    report = cli.json("card", "verify", str(folder), "--db", db, code=1)  # only "valid" exits 0
    assert (report["verdict"], report["failures"], report["chain"]["status"]) == ("untrusted", [], "untrusted")
    pem = tmp_path / "csca-de.pem"
    pem.write_bytes(foreign.csca_pem)
    added = cli.json("pki", "trust", "add", str(pem), "--kind", "csca", "--db", db)
    assert added["kind"] == "csca" and "CSCA DE" in added["label"]
    report = cli.json("card", "verify", str(folder), "--db", db)
    assert (report["verdict"], report["chain"]["status"]) == ("valid", "trusted")
    refused = cli("card", "issue", DUC, "--kind", "renewal", "--db", db)
    assert refused.returncode == 1 and refused.stdout == "" and "never had a card" in refused.stderr
