"""``dinhdanh client`` and ``dinhdanh oidc`` end to end, in subprocesses as an operator runs them
(SQLite; the storage under them is tested on both back-ends in tests/integration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from joserfc.jwk import ECKey


@pytest.fixture
def run(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DINHDANH_DATABASE_URL"}
    env.update(DINHDANH_HOME=str(tmp_path), PYTHONIOENCODING="utf-8")
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"

    def call(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dinhdanh", *args, "--db", db], capture_output=True, text=True,
                              encoding="utf-8", env=env, cwd=tmp_path, timeout=120)

    return call


def _json(p: subprocess.CompletedProcess):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def test_register_approve_list_and_rotate(run, tmp_path):
    made = _json(run("client", "add", "--name", "Cổng dịch vụ công tỉnh", "--redirect-uri", "https://dvc.example/cb",
                     "--redirect-uri", "https://m.dvc.example/cb", "--sector", "dvc.example",
                     "--scopes", "openid profile dinhdanh.pid"))
    assert made["client_id"] and len(made["client_secret"]) >= 40 and made["status"] == "pending"
    assert made["sector"] == "dvc.example" and made["scope"] == "openid profile dinhdanh.pid"

    refused = run("client", "approve", made["client_id"], "--agreement", "TT-07/2025", "--purpose", "Nộp hồ sơ",
                  "--security-level", "2")
    assert refused.returncode == 1 and "level 3" in refused.stderr and "Traceback" not in refused.stderr
    approved = _json(run("client", "approve", made["client_id"], "--agreement", "TT-07/2025", "--purpose",
                         "Nộp hồ sơ trực tuyến", "--security-level", "3"))
    assert approved["status"] == "approved" and approved["agreement"] == "TT-07/2025"

    key = ECKey.generate_key("P-256", auto_kid=True)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    partner = _json(run("client", "add", "--name", "Ngân hàng A", "--auth", "private_key_jwt", "--jwks",
                        str(tmp_path / "jwks.json"), "--grant", "client_credentials", "--scopes", "dinhdanh.verify"))
    assert partner["client_secret"] is None and partner["grant_types"] == ["client_credentials"]

    bad = run("client", "add", "--name", "X", "--redirect-uri", "https://x.example/cb", "--scopes", "openid all")
    assert bad.returncode == 2 and "Unknown scope" in bad.stderr and bad.stdout == ""

    listed = _json(run("client", "list"))
    assert {c["client_id"]: c["status"] for c in listed} == {made["client_id"]: "approved",
                                                             partner["client_id"]: "pending"}

    rotated = _json(run("oidc", "rotate-keys"))
    # published at once, signing one JWKS cache lifetime later: the keys before still sign
    assert [(k["alg"], k["state"]) for k in rotated["keys"]] == [("ES256", "signing"), ("ES256", "next"),
                                                                  ("RS256", "signing"), ("RS256", "next")]
    assert rotated["keys"][1]["kid"] == rotated["kid"] and all(k["published"] for k in rotated["keys"])
