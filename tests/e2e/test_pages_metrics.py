"""The landing page (Vietnamese first, English available) and the operational metrics."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.officers.service import add_officer
from dinhdanh.web.app import create_app


def test_landing_page_is_vietnamese_with_english(sqlite_engine):
    client = TestClient(create_app(sqlite_engine))
    vi = client.get("/")
    assert vi.status_code == 200 and 'lang="vi"' in vi.text and "Cơ sở dữ liệu quốc gia về dân cư" in vi.text
    en = client.get("/?lang=en")
    assert 'lang="en"' in en.text and "national population register" in en.text
    assert client.get("/?lang=xx").text == vi.text


def test_metrics_count_reads_without_personal_data(family, tmp_path):
    engine = family
    with engine.begin() as conn:
        _, token = add_officer(conn, "Cán bộ", "national", None, roles=["registrar"])
    client = TestClient(create_app(engine))
    headers = {"Authorization": f"Bearer {token}"}

    def reads() -> float:
        text = client.get("/metrics/").text
        line = next((ln for ln in text.splitlines() if ln.startswith('dinhdanh_record_reads_total{action="read"}')),
                    None)
        return float(line.split()[-1]) if line else 0.0

    before = reads()
    assert client.get("/api/v1/citizens/001085000001", headers=headers).status_code == 200
    assert reads() == before + 1
    assert "001085000001" not in client.get("/metrics/").text
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM access_log")).scalar_one() == 1


def test_refusals_are_in_vietnamese_unless_english_is_asked_for(family):
    with family.begin() as conn:
        _, token = add_officer(conn, "Cán bộ", "national", None, roles=["registrar"])
    client = TestClient(create_app(family))
    body = {"pid": "001212000003", "spouse_pid": "079193000006", "date": "2024-01-01"}
    vi = client.post("/api/v1/events/marriage", json=body, headers={"Authorization": f"Bearer {token}"})
    en = client.post("/api/v1/events/marriage", json=body,
                     headers={"Authorization": f"Bearer {token}", "Accept-Language": "en-GB,en;q=0.9"})
    assert vi.status_code == en.status_code == 409
    assert vi.json()["error"]["code"] == en.json()["error"]["code"] == "under_marriage_age"
    assert vi.json()["error"]["message"].startswith("Chưa đủ tuổi kết hôn")
    assert "marriage age" in en.json()["error"]["message"]
    missing = client.get("/api/v1/citizens/001099999999", headers={"Authorization": f"Bearer {token}"})
    assert missing.json()["error"]["message"] == "Không tìm thấy người có số định danh cá nhân này."
    assert client.get("/api/v1/citizens/001099999999").json()["error"]["title"] == "Chưa xác thực"


def test_an_unexpected_error_answers_without_personal_data(sqlite_engine, caplog, monkeypatch):
    from dinhdanh.web.api import citizens

    with sqlite_engine.begin() as conn:
        _, token = add_officer(conn, "Cán bộ", "national", None, roles=["registrar"])

    def broken(conn, pid, area):
        conn.execute(sa.text("SELECT * FROM no_such_table WHERE pid = :pid"), {"pid": pid})

    monkeypatch.setattr(citizens.records, "find_person", broken)
    client = TestClient(create_app(sqlite_engine), raise_server_exceptions=False)
    r = client.get("/api/v1/citizens/001085000001", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert "001085000001" not in r.text and "001085000001" not in caplog.text


def test_database_errors_do_not_carry_bound_values(sqlite_engine):
    import pytest

    with pytest.raises(sa.exc.OperationalError) as err:
        with sqlite_engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table WHERE pid = :pid"), {"pid": "001085000001"})
    assert "001085000001" not in str(err.value) and "hidden" in str(err.value)
