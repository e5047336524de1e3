"""Batches over the API end to end (TestClient), on SQLite and PostgreSQL: upload CSV and Parquet,
poll, run the runner in-process, download and check every row against the known answers of
``tests/integration/test_match.py``; wrong input of every kind leaves nothing behind; partners see
only their own batches; a runner stopped mid-batch is resumed from its checkpoint by another; a
telco's batch feeds the mismatch ladder, which the telco reads and clears with POST /verify."""

from __future__ import annotations

import csv
import io
import os
import random
import stat

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.exchange import batches, partners
from dinhdanh.exchange.tables import match_batches, match_jobs
from dinhdanh.registry.tables import former_pids, persons
from dinhdanh.store.base import utcnow
from dinhdanh.web.app import create_app
from tests.integration.test_match import CASES, GIANG, OLD_GIANG, RESULT_COLUMNS
from tests.oidc_support import add_partner

ISSUER = "https://testserver"
URL = "/api/v1/batches"
COLUMNS = ("msisdn", "pid", "full_name", "date_of_birth", "sex")
PHONES = [("090100" + c[0], *c[1:]) for c in CASES]  # real-looking numbers for the telco


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DINHDANH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def register(family, home):
    with family.begin() as conn:
        giang = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == GIANG)).scalar_one()
        conn.execute(former_pids.insert().values(pid=OLD_GIANG, person_id=giang, retired_at=utcnow(),
                                                 retired_reason="test"))
    return family


@pytest.fixture
def http(register) -> TestClient:
    return TestClient(create_app(register), base_url=ISSUER, follow_redirects=False)


def bearer(http: TestClient, partner: dict) -> dict:
    r = http.post("/token", data={"grant_type": "client_credentials", "scope": "dinhdanh.verify"},
                  auth=(partner["client_id"], partner["client_secret"]))
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def csv_bytes(rows=CASES, columns=COLUMNS) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    w.writerows([[r[COLUMNS.index(c)] for c in columns] for r in rows])
    return buf.getvalue().encode()


def parquet_bytes(rows=CASES) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)}), buf)
    return buf.getvalue()


def upload(http, auth, content: bytes, name: str = "subscribers.csv", **form):
    return http.post(URL, files={"file": (name, content, "application/octet-stream")}, data=form, headers=auth)


def read_result(content: bytes, fmt: str) -> list[dict]:
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(content)).to_pylist()
    return [{k: (v or None) for k, v in row.items()} for row in csv.DictReader(io.StringIO(content.decode()))]


def leftovers(engine, home) -> tuple[int, list]:
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(match_batches)).scalar()
    folder = home / "var" / "batches"
    return n, sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("fmt_in,fmt_out", [("csv", None), ("parquet", None), ("csv", "parquet"), ("parquet", "csv")])
def test_upload_poll_run_download(register, http, home, fmt_in, fmt_out):
    bank = add_partner(register, kind="bank", name="Ngân hàng thử nghiệm")
    auth = bearer(http, bank)
    content = csv_bytes() if fmt_in == "csv" else parquet_bytes()
    form = {"format": fmt_out} if fmt_out else {}
    r = upload(http, auth, content, name="no-extension", **form)
    assert r.status_code == 202, r.text
    body = r.json()
    batch_id = body["batch_id"]
    assert body["status"] == "queued" and r.headers["location"] == f"{URL}/{batch_id}"
    assert body["links"] == {"self": f"{URL}/{batch_id}", "result": f"{URL}/{batch_id}/result"}
    assert body["input_format"] == fmt_in and body["result_format"] == (fmt_out or fmt_in)
    assert len(batch_id) == 22 and not batch_id.isdigit()
    stored = home / "var" / "batches" / batch_id / f"input.{fmt_in}"
    assert stored.read_bytes() == content and stat.S_IMODE(os.stat(stored).st_mode) == 0o600

    status = http.get(f"{URL}/{batch_id}", headers=auth).json()
    assert (status["status"], status["rows_done"], status["progress"], status["summary"]) == ("queued", 0, 0.0, None)
    assert http.get(f"{URL}/{batch_id}/result", headers=auth).status_code == 409

    seen = []
    ran = batches.run_pending(register, chunk_rows=4, after_chunk=lambda i, done: seen.append(done))
    assert [r["status"] for r in ran] == ["done"] and seen == [4, 8, 12, 15]
    status = http.get(f"{URL}/{batch_id}", headers=auth).json()
    want = {o: sum(c[8] == o for c in CASES) for o in ("match", "mismatch", "not_found", "invalid")}
    assert (status["status"], status["rows_total"], status["rows_done"], status["progress"]) == ("done", 15, 15, 1.0)
    assert status["summary"] == want and status["error"] is None

    r = http.get(f"{URL}/{batch_id}/result", headers=auth)
    assert r.status_code == 200
    fmt = fmt_out or fmt_in
    assert r.headers["content-type"].startswith("text/csv" if fmt == "csv" else "application/vnd.apache.parquet")
    got = read_result(r.content, fmt)
    assert [row["msisdn"] for row in got] == [c[0] for c in CASES]
    for row, case in zip(got, CASES):
        assert tuple(row[k] for k in RESULT_COLUMNS) == case[5:], case
    listed = http.get(URL, headers=auth).json()["items"]
    assert [b["batch_id"] for b in listed] == [batch_id]
    with register.connect() as conn:
        job = conn.execute(sa.select(match_jobs)).one()
    assert (job.partner, job.actor, job.purpose, job.matched) == (
        bank["client_id"], f"partner:{bank['client_id']}", bank_purpose(register, bank), want["match"])
    # a bank's batch feeds no ladder; the finished batch's files can be deleted, its record stays
    assert http.get("/api/v1/subscribers", headers=auth).status_code == 403
    assert http.delete(f"{URL}/{batch_id}", headers=auth).status_code == 204
    assert not (home / "var" / "batches" / batch_id).exists()
    assert http.get(f"{URL}/{batch_id}/result", headers=auth).status_code == 404
    assert http.get(f"{URL}/{batch_id}", headers=auth).json()["status"] == "done"


def bank_purpose(engine, partner: dict) -> str:
    with engine.connect() as conn:
        return partners.load(conn, partner["client_id"]).purposes[0]


@pytest.mark.parametrize("what,content,form,status,field", [
    ("empty file", b"", {}, 422, "file"),
    ("missing column", b"pid,full_name\n001085000001,An\n", {}, 422, "date_of_birth"),
    ("garbage bytes", b"\xff\xfe\x00\x81garbage\x00\x9f", {}, 422, "file"),
    ("broken parquet", b"PAR1" + random.Random(152).randbytes(64), {}, 422, "file"),  # the same on every xdist worker
    ("ragged csv", b"pid,full_name,date_of_birth\n1,2\n\"3,4,5,6\n", {}, 422, "file"),
    ("header only, bad format", b"pid,full_name,date_of_birth\n", {"format": "xlsx"}, 422, "format"),
    ("bad purpose", csv_bytes(), {"purpose": "marketing"}, 403, "purpose"),
])
def test_wrong_input_leaves_nothing(register, http, home, what, content, form, status, field):
    auth = bearer(http, add_partner(register))
    r = upload(http, auth, content, **form)
    assert r.status_code == status, (what, r.text)
    assert r.json()["error"]["field"] == field, (what, r.json())
    assert leftovers(register, home) == (0, [])


def test_not_a_file_and_oversized(register, http, home, monkeypatch):
    auth = bearer(http, add_partner(register))
    r = http.post(URL, data={"file": "pid,full_name,date_of_birth"}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["field"] == "file"
    assert http.post(URL, headers=auth).status_code == 422
    monkeypatch.setenv("DINHDANH_BATCH_MAX_BYTES", "100")
    r = upload(http, auth, csv_bytes())
    assert r.status_code == 413 and r.json()["error"]["code"] == "upload_too_large"
    assert leftovers(register, home) == (0, [])
    # the limit also holds when the size is not known up front (the stream is counted)
    with register.begin() as conn:
        partner = partners.load(conn, add_partner(register)["client_id"])
        with pytest.raises(batches.TooLarge):
            batches.submit(conn, partner, io.BytesIO(csv_bytes()), max_bytes=100)
    assert leftovers(register, home) == (0, [])


def test_oversized_uploads_are_cut_off_as_they_arrive(register, http, home, monkeypatch):
    auth = bearer(http, add_partner(register))
    monkeypatch.setenv("DINHDANH_BATCH_MAX_BYTES", "1000")
    big = b"pid,full_name,date_of_birth\n" + b"001085000001,An,1985-03-04\n" * 20_000  # ~540 kB
    r = upload(http, auth, big)  # refused from its Content-Length, before the body is read
    assert r.status_code == 413 and r.json()["error"]["code"] == "upload_too_large"
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()

    def chunked():  # no Content-Length: the bytes are counted as they arrive
        yield head
        for _ in range(200):
            yield big[:10_000]
        yield f"\r\n--{boundary}--\r\n".encode()

    r = http.post(URL, content=chunked(), headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "upload_too_large", r.text
    assert leftovers(register, home) == (0, [])


def test_partners_see_only_their_own(register, http):
    owner, other = add_partner(register), add_partner(register, name="Nhà mạng khác")
    verify_only = add_partner(register, name="Chỉ xác thực", operations=("verify",))
    auth = bearer(http, owner)
    batch_id = upload(http, auth, csv_bytes()).json()["batch_id"]
    other_auth = bearer(http, other)
    for path in (f"{URL}/{batch_id}", f"{URL}/{batch_id}/result"):
        assert http.get(path, headers=other_auth).status_code == 404
    assert http.delete(f"{URL}/{batch_id}", headers=other_auth).status_code == 404
    assert http.get(URL, headers=other_auth).json() == {"items": []}
    assert http.get(f"{URL}/AAAAAAAAAAAAAAAAAAAAAA", headers=auth).status_code == 404
    assert http.delete(f"{URL}/{batch_id}", headers=auth).status_code == 409  # not finished
    r = upload(http, bearer(http, verify_only), csv_bytes())
    assert r.status_code == 403 and r.json()["error"]["code"] == "operation_not_allowed"
    assert http.get(URL).status_code == 401


def test_a_stopped_runner_is_resumed_by_another(register, http):
    auth = bearer(http, add_partner(register, kind="bank", name="Ngân hàng"))
    batch_id = upload(http, auth, parquet_bytes()).json()["batch_id"]

    def killed(index, done):
        if index == 1:
            raise KeyboardInterrupt  # the process dies: no chance to mark anything

    assert batches.claim(register, "runner-a") == batch_id
    assert batches.claim(register, "runner-b") is None  # runner-a holds the lease
    with pytest.raises(KeyboardInterrupt):  # (each chunk renews the lease to expire at once)
        batches.run(register, batch_id, "runner-a", lease_seconds=0, chunk_rows=4, after_chunk=killed)
    status = http.get(f"{URL}/{batch_id}", headers=auth).json()
    assert (status["status"], status["rows_done"], status["rows_total"]) == ("running", 8, 15)
    assert 0.5 < status["progress"] < 0.6
    seen = []
    ran = batches.run_pending(register, "runner-b", chunk_rows=99, after_chunk=lambda i, done: seen.append((i, done)))
    assert [r["status"] for r in ran] == ["done"] and seen == [(2, 12), (3, 15)]
    status = http.get(f"{URL}/{batch_id}", headers=auth).json()
    assert status["status"] == "done" and sum(status["summary"].values()) == 15
    with register.connect() as conn:
        row = conn.execute(sa.select(match_batches)).one()
        assert conn.execute(sa.select(sa.func.count()).select_from(match_jobs)).scalar() == 1
    assert row.attempts == 2 and row.lease_owner is None


def test_a_live_lease_is_not_taken(register, http):
    auth = bearer(http, add_partner(register))
    upload(http, auth, csv_bytes())
    assert batches.claim(register, "runner-a") is not None
    assert batches.claim(register, "runner-b") is None


def test_a_refused_partner_fails_the_batch_cleanly(register, http):
    partner = add_partner(register, kind="bank", name="Ngân hàng")
    auth = bearer(http, partner)
    assert upload(http, auth, csv_bytes()).status_code == 202
    with register.begin() as conn:
        partners.suspend_partner(conn, partner["client_id"], actor="test")
    assert [r["status"] for r in batches.run_pending(register)] == ["failed"]
    with register.connect() as conn:
        row = conn.execute(sa.select(match_batches)).one()
    assert row.status == "failed" and "not active" in row.error
    assert row.error == f"Partner {partner['client_id']!r} is not active."


def test_a_file_broken_past_its_first_block_fails_without_quoting_it(register, http):
    auth = bearer(http, add_partner(register, kind="bank", name="Ngân hàng"))
    good = "001085000001,Nguyễn Văn An,1985-03-04\n" * 40_000  # > 1 MiB: past the upload's structure check
    content = ("pid,full_name,date_of_birth\n" + good + "001085000001,Nguyễn Văn Bí Mật,1985-03-04,thừa\n").encode()
    batch_id = upload(http, auth, content).json()["batch_id"]
    assert [r["status"] for r in batches.run_pending(register)] == ["failed"]
    status = http.get(f"{URL}/{batch_id}", headers=auth).json()
    assert status["status"] == "failed" and status["summary"] is None
    assert "cannot be read" in status["error"] and "Bí Mật" not in status["error"] and "0010850" not in status["error"]
    assert http.get(f"{URL}/{batch_id}/result", headers=auth).status_code == 409


def test_a_telcos_batch_feeds_the_ladder(register, http):
    telco = add_partner(register, fields=("full_name", "date_of_birth", "sex", "phone"))
    auth = bearer(http, telco)
    upload(http, auth, csv_bytes(PHONES))
    batches.run_pending(register)
    batches.run_pending(register)  # nothing left to do: the ladder step ran once
    problems = sorted(c[0] for c in PHONES if c[8] != "match")
    page = http.get("/api/v1/subscribers", headers=auth).json()
    assert page["counts"]["notified"] == len(problems) and [i["msisdn"] for i in page["items"]] == problems
    one = http.get("/api/v1/subscribers/0901000904", headers=auth).json()
    assert one["state"] == "notified" and one["next"]["state"] == "one_way_locked"
    assert [h["state"] for h in one["history"]] == ["notified"]
    assert http.get("/api/v1/subscribers/0901000901", headers=auth).status_code == 404  # matched: not on the ladder
    other = bearer(http, add_partner(register, name="Nhà mạng khác"))
    assert http.get("/api/v1/subscribers/0901000904", headers=other).status_code == 404
    assert http.get("/api/v1/subscribers?state=cleared", headers=auth).json()["items"] == []
    # the telco re-verifies the subscriber at its counter: the subscription is cleared
    r = http.post("/api/v1/verify", headers=auth, json={"pid": CASES[3][1], "full_name": "Nguyễn Minh Châu",
                                                         "date_of_birth": "2012-01-02", "phone": "0901000904"})
    assert r.status_code == 200, r.text
    one = http.get("/api/v1/subscribers/0901000904", headers=auth).json()
    assert one["state"] == "cleared" and one["next"] is None
    assert one["history"][-1]["cause"] == "re-verified by the telco (POST /api/v1/verify)"
    # a verify whose name does not match exactly clears nothing
    http.post("/api/v1/verify", headers=auth, json={"pid": CASES[4][1], "full_name": "Nguyen Thi Dung",
                                                    "date_of_birth": "2015-07-08", "phone": "0901000905"})
    assert http.get("/api/v1/subscribers/0901000905", headers=auth).json()["state"] == "notified"
    assert http.get("/api/v1/subscribers?state=cleared", headers=auth).json()["counts"]["cleared"] == 1


def test_the_runner_beside_the_api(register, monkeypatch):
    """create_app(background=True), as serve runs it: the batch is matched by the loop while polled."""
    import time

    from dinhdanh.web import background

    only = {"batches": background.standard_loops()["batches"]}
    monkeypatch.setattr(background, "standard_loops", lambda base_url=None: only)
    # the partner is registered before the loops start: the test's own write is a deferred transaction
    # (engine.begin), which SQLite refuses at once ("database is locked") when a loop's unit commits
    # between its read and its write, whatever the busy timeout
    partner = add_partner(register, kind="bank", name="Ngân hàng")
    with TestClient(create_app(register, background=True), base_url=ISSUER) as http:
        auth = bearer(http, partner)
        batch_id = upload(http, auth, parquet_bytes()).json()["batch_id"]
        deadline = time.monotonic() + 30
        while (status := http.get(f"{URL}/{batch_id}", headers=auth).json())["status"] != "done":
            assert status["status"] in ("queued", "running") and time.monotonic() < deadline, status
            time.sleep(0.2)
        got = read_result(http.get(f"{URL}/{batch_id}/result", headers=auth).content, "parquet")
    assert [row["outcome"] for row in got] == [c[8] for c in CASES]
