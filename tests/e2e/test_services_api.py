"""The public catalogue over HTTP (``GET /api/v1/services``, ``/api/v1/services/{code}``) and the
``dinhdanh services`` commands."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from dinhdanh.cli import app as cli
from dinhdanh.web.app import create_app

EN = {"Accept-Language": "en-GB,en;q=0.8"}


def test_the_catalogue_is_public_vietnamese_first_english_available(engine):
    client = TestClient(create_app(engine))
    listed = client.get("/api/v1/services?on=2026-12-05")
    assert listed.status_code == 200
    services = listed.json()
    assert len(services) == 25
    birth = next(s for s in services if s["code"] == "1.001193")
    assert birth == {"code": "1.001193", "version": "1.001193@2016-01-01", "name": "Đăng ký khai sinh",
                     "sector": "commune",
                     "agency": {"code": "ubnd-xa", "name": "Ủy ban nhân dân cấp xã", "level": "commune"},
                     "level": "full", "processing_days": 0,
                     "fee": {"currency": "VND", "online": 8000, "counter": 8000, "varies": False,
                             "exemptions": ["on_time_birth"], "refund_on_refusal": "full"}}
    residence = next(s for s in services if s["code"] == "1.004222")
    assert (residence["fee"]["online"], residence["fee"]["counter"]) == (10000, 20000)
    english = {s["code"]: s for s in client.get("/api/v1/services?on=2026-12-05", headers=EN).json()}
    assert english["1.001193"]["name"] == "Birth registration"
    assert english["1.001193"]["agency"]["name"] == "Commune People's Committee"
    assert client.get("/api/v1/services").status_code == 200  # today by default


def test_one_service_with_its_form_prefill_and_past_versions(engine):
    client = TestClient(create_app(engine))
    death = client.get("/api/v1/services/1.000656").json()
    Draft202012Validator.check_schema(death["form"])
    assert death["form"]["properties"]["deceased"]["properties"]["full_name"]["x-source"] == "register:full_name"
    assert {"field": "deceased.full_name", "source": "register:full_name", "of": "deceased.pid"} in death["prefill"]
    assert death["fee_schedule"]["exemptions"][0]["code"] == "on_time_death"
    assert death["attachments"][0]["name"] == "Giấy báo tử hoặc giấy tờ thay giấy báo tử"
    group = client.get("/api/v1/services/3.000722?on=2025-01-01", headers=EN).json()
    assert group["version"] == "3.000722@2024-07-01" and group["effective_to"] == "2025-07-01"
    assert group["group"]["choose"] == {"min": 3, "max": 3}
    assert group["group"]["procedures"][2]["name"] == "Health insurance card for a child under 6"
    assert client.get("/api/v1/services/3.000722?on=2026-09-01").json()["version"] == "3.000722@2026-09-01"
    # a former portal code answers with the service's current code
    assert client.get("/api/v1/services/2.000986?on=2025-01-01").json()["code"] == "3.000722"


def test_refusals_name_the_field(engine):
    client = TestClient(create_app(engine))
    unknown = client.get("/api/v1/services/9.999999")
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert (error["code"], error["field"]) == ("not_found", "code")
    assert error["message"].startswith("Không có thủ tục hành chính")
    assert client.get("/api/v1/services/9.999999", headers=EN).json()["error"]["message"].startswith("No service")
    early = client.get("/api/v1/services/3.000722?on=2020-01-01")
    assert early.status_code == 404 and early.json()["error"]["code"] == "service_not_in_force"
    assert early.json()["error"]["field"] == "on"
    for on in ("2025-02-30", "20250101", "yesterday"):
        bad = client.get(f"/api/v1/services?on={on}")
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "on", on


def test_the_cli_lists_and_shows_services():
    runner = CliRunner()
    listed = runner.invoke(cli, ["services", "list", "--json", "--on", "2026-12-05"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert len(rows) == 25
    assert {"code", "name", "agency_level", "level", "processing_days", "fee"} <= set(rows[0])
    table = runner.invoke(cli, ["services", "list", "--lang", "en"])
    assert table.exit_code == 0 and "Birth registration" in table.output
    shown = runner.invoke(cli, ["services", "show", "1.004194", "--on", "2026-12-05"])
    assert shown.exit_code == 0, shown.output
    service = json.loads(shown.output)
    assert service["name"] == "Đăng ký tạm trú" and service["form"]["properties"]["from"]["format"] == "date"
    missing = runner.invoke(cli, ["services", "show", "9.999999"])
    assert missing.exit_code == 1 and "(code)" in missing.output
    assert runner.invoke(cli, ["services", "list", "--on", "2025-02-30"]).exit_code == 2
