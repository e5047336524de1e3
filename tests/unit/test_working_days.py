"""The legal clock's calendar: Việt Nam's working days, deadlines, the supplement pause, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo

import holidays
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from dinhdanh.calendar import clock, swaps
from dinhdanh.calendar.working_days import (
    CalendarError, FIRST_YEAR, LAST_YEAR, VIETNAM, add_working_days, due_after_supplement, due_date,
    is_working_day, next_working_day, received_on, supplement_deadline, working_days_between, year_days)
from dinhdanh.cli import app

D = dt.date


def days(first: D, last: D) -> list[D]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def at(y, m, d, hh, mm, tz=VIETNAM) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=tz)


# -- holidays and swaps ------------------------------------------------------------------------

def test_tet_2026_is_nine_days_off_and_a_deadline_runs_across_it():
    assert not any(is_working_day(d) for d in days(D(2026, 2, 14), D(2026, 2, 22)))
    assert is_working_day(D(2026, 2, 13)) and is_working_day(D(2026, 2, 23))
    # received Tuesday 10/2: 11, 12, 13 before Tết, 23 and 24 after
    assert add_working_days(D(2026, 2, 10), 5) == D(2026, 2, 24)
    assert due_date(at(2026, 2, 10, 8, 0), 5) == D(2026, 2, 24)


def test_tet_2025_moves_the_saturday_holiday_to_monday():
    assert not any(is_working_day(d) for d in days(D(2025, 1, 25), D(2025, 2, 2)))
    assert add_working_days(D(2025, 1, 24), 1) == D(2025, 2, 3)


def test_reunification_and_labour_day_2025_with_the_decreed_swap():
    # Saturday 26/4/2025 was worked so that Friday 2/5 could be off: 30/4 to 4/5 without work
    assert is_working_day(D(2025, 4, 26))
    assert not any(is_working_day(d) for d in days(D(2025, 4, 30), D(2025, 5, 4)))
    assert add_working_days(D(2025, 4, 25), 1) == D(2025, 4, 26)
    assert add_working_days(D(2025, 4, 25), 3) == D(2025, 4, 29)
    assert add_working_days(D(2025, 4, 29), 2) == D(2025, 5, 6)


def test_reunification_and_labour_day_2026_and_hung_kings_on_a_sunday():
    assert not is_working_day(D(2026, 4, 27))  # Giỗ Tổ on Sunday 26/4: compensated on Monday
    assert add_working_days(D(2026, 4, 24), 1) == D(2026, 4, 28)
    assert add_working_days(D(2026, 4, 29), 1) == D(2026, 5, 4)  # 30/4 Thursday, 1/5 Friday
    assert working_days_between(D(2026, 4, 24), D(2026, 5, 4)) == 3


def test_national_day_2025_and_2026():
    assert add_working_days(D(2025, 8, 29), 1) == D(2025, 9, 3)  # 1/9 and 2/9/2025 off
    # 2026: Monday 31/8 off in exchange for Saturday 22/8 (Công văn 9859/VPCP-KGVX)
    assert not any(is_working_day(d) for d in days(D(2026, 8, 29), D(2026, 9, 2)))
    assert is_working_day(D(2026, 8, 22))
    assert add_working_days(D(2026, 8, 21), 1) == D(2026, 8, 22)
    assert add_working_days(D(2026, 8, 21), 2) == D(2026, 8, 24)
    assert add_working_days(D(2026, 8, 28), 1) == D(2026, 9, 3)


def test_new_year_2026_swap_is_not_in_the_package_but_is_in_the_table():
    assert D(2026, 1, 2) not in holidays.VN(years=2026)  # only the decree makes it a day off
    assert not is_working_day(D(2026, 1, 2)) and is_working_day(D(2026, 1, 10))
    assert add_working_days(D(2025, 12, 31), 1) == D(2026, 1, 5)
    assert add_working_days(D(2026, 1, 9), 1) == D(2026, 1, 10)


def test_weekends_are_not_worked():
    assert [is_working_day(d) for d in days(D(2026, 3, 2), D(2026, 3, 8))] == [True] * 5 + [False] * 2
    assert add_working_days(D(2026, 3, 6), 1) == D(2026, 3, 9)
    assert next_working_day(D(2026, 3, 7)) == D(2026, 3, 9)
    assert add_working_days(D(2026, 3, 7), 0) == D(2026, 3, 7)


def test_every_swap_in_the_package_is_in_the_table_with_its_make_up_day():
    """A newer ``holidays`` that knows a swap the table lacks fails here: add it to the table."""
    substituted = re.compile(r"thay cho ngày (\d{2})/(\d{2})/(\d{4})")
    for year in range(FIRST_YEAR, 2036):
        for day, name in holidays.VN(years=year, language="vi").items():
            if m := substituted.search(name):
                work_on = D(int(m[3]), int(m[2]), int(m[1]))
                assert any(s.day_off == day and s.work_on == work_on for s in swaps.swaps_in(year)), (day, name)


def test_the_table_records_its_sources_and_checked_years():
    assert swaps.years() == (2024, 2025, 2026)
    for year in swaps.years():
        for swap in swaps.swaps_in(year):
            assert re.search(r"\d+/VPCP-KGVX", swap.source)
            assert not is_working_day(swap.day_off) and is_working_day(swap.work_on)


@pytest.mark.parametrize("entry, problem", [
    ({"day_off": "2026-01-03", "work_on": "2026-01-10"}, "already a weekly rest day"),
    ({"day_off": "2026-01-02", "work_on": "2026-01-09"}, "already a working day"),
    ({"day_off": "2026-1-2", "work_on": "2026-01-10"}, "YYYY-MM-DD"),
    ({"day_off": "2026-01-02", "work_on": "2026-01-10", "source": ""}, "source"),
])
def test_a_malformed_table_entry_is_refused(entry, problem):
    entry = {"occasion": {"vi": "Tết Dương lịch", "en": "New Year"}, "source": "Công văn", **entry}
    with pytest.raises(ValueError, match=problem):
        swaps._swap(entry, "years.2026.swaps[0]")


def test_year_days_lists_weekdays_off_and_worked_saturdays():
    listed = {d.date: d for d in year_days(2026)}
    assert listed[D(2026, 1, 2)].kind == "day_off" and "12729/VPCP-KGVX" in listed[D(2026, 1, 2)].source
    assert listed[D(2026, 1, 10)].kind == "working_day"
    assert listed[D(2026, 2, 17)].name == "Tết Nguyên Đán"
    assert D(2026, 4, 26) not in listed  # a Sunday: no change to the count
    assert listed[D(2026, 4, 27)].name == "Ngày Giỗ Tổ Hùng Vương (nghỉ bù)"
    assert year_days(2026, "en")[0].name == "New Year's Day"
    weekdays_off = [d for d in days(D(2026, 1, 1), D(2026, 12, 31)) if d.weekday() < 5 and not is_working_day(d)]
    assert weekdays_off == [d.date for d in year_days(2026) if d.kind != "working_day"]


# -- receipt, deadlines, supplements -----------------------------------------------------------

def test_received_on_after_17_00_and_on_a_sunday():
    assert received_on(at(2026, 3, 5, 17, 0)) == D(2026, 3, 5)  # at 17:00 exactly: still that day
    assert received_on(at(2026, 3, 5, 17, 1)) == D(2026, 3, 6)
    assert received_on(at(2026, 3, 6, 18, 0)) == D(2026, 3, 9)  # Friday evening: Monday
    assert received_on(at(2026, 3, 8, 10, 0)) == D(2026, 3, 9)  # Sunday
    assert received_on(at(2026, 3, 1, 23, 30, dt.UTC)) == D(2026, 3, 2)  # Monday 06:30 in Hà Nội
    assert received_on(at(2026, 3, 2, 10, 1, dt.UTC)) == D(2026, 3, 3)  # 17:01 in Hà Nội
    assert received_on(at(2026, 2, 13, 17, 30)) == D(2026, 2, 23)  # then Tết
    assert received_on(at(2026, 3, 5, 16, 0), cutoff=dt.time(15, 0)) == D(2026, 3, 6)


def test_the_supplement_pause_carries_the_days_left_over():
    due = add_working_days(D(2026, 3, 2), 7)  # received Monday 2/3: due Wednesday 11/3
    assert due == D(2026, 3, 11)
    # asked on Thursday 5/3 (3 days used, 4 left), supplied on Wednesday 18/3: due 4 days later
    assert due_after_supplement(due, D(2026, 3, 5), D(2026, 3, 18)) == D(2026, 3, 24)
    # supplied the day it was asked: only the working days since that day count again
    assert due_after_supplement(due, D(2026, 3, 5), D(2026, 3, 5)) == due
    # asked on the due date itself: nothing left, due the day it counts as supplied
    assert due_after_supplement(due, due, D(2026, 3, 13)) == D(2026, 3, 13)
    # across Tết: asked on 12/2/2026 with 2 days left (13/2 and 23/2), supplied on 24/2
    assert due_after_supplement(D(2026, 2, 23), D(2026, 2, 12), D(2026, 2, 24)) == D(2026, 2, 26)


def test_supplement_deadline_is_seven_working_days():
    assert supplement_deadline(D(2026, 3, 2)) == D(2026, 3, 11)
    assert supplement_deadline(D(2026, 2, 12)) == D(2026, 3, 2)  # 13/2, then 23/2 to 2/3
    assert supplement_deadline(D(2026, 8, 20)) == D(2026, 8, 28)  # the worked Saturday 22/8 counts
    assert supplement_deadline(D(2026, 8, 24)) == D(2026, 9, 7)  # 29/8 to 2/9 off


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call, field", [
    (lambda: add_working_days(D(2026, 1, 5), -1), "n"),
    (lambda: add_working_days(D(2026, 1, 5), 3651), "n"),
    (lambda: add_working_days(D(2026, 1, 5), True), "n"),
    (lambda: add_working_days(D(2026, 1, 5), 2.0), "n"),
    (lambda: add_working_days(D(2099, 12, 1), 100), "n"),
    (lambda: add_working_days("2026-01-05", 1), "start"),
    (lambda: add_working_days(dt.datetime(2026, 1, 5, 9, 0), 1), "start"),
    (lambda: add_working_days(D(2019, 12, 31), 1), "start"),
    (lambda: is_working_day(None), "day"),
    (lambda: working_days_between(D(2026, 1, 5), D(2100, 1, 1)), "b"),
    (lambda: received_on(dt.datetime(2026, 1, 5, 9, 0)), "moment"),
    (lambda: received_on(D(2026, 1, 5)), "moment"),
    (lambda: due_after_supplement(D(2026, 3, 11), D(2026, 3, 12), D(2026, 3, 13)), "requested_on"),
    (lambda: due_after_supplement(D(2026, 3, 11), D(2026, 3, 5), D(2026, 3, 4)), "supplied_on"),
    (lambda: year_days(2019), "year"),
    (lambda: year_days(2026, "fr"), "language"),
])
def test_bad_input_is_a_value_error_naming_the_argument(call, field):
    with pytest.raises(CalendarError) as caught:
        call()
    assert isinstance(caught.value, ValueError) and caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


# -- properties --------------------------------------------------------------------------------

dates = st.dates(D(FIRST_YEAR, 1, 1), D(LAST_YEAR - 12, 12, 31))
counts = st.integers(0, 600)


@settings(max_examples=150, deadline=None)
@given(dates, st.integers(1, 600))
def test_a_due_date_is_a_working_day(start, n):
    assert is_working_day(add_working_days(start, n))


@settings(max_examples=150, deadline=None)
@given(dates, counts)
def test_working_days_between_inverts_add_working_days(start, n):
    due = add_working_days(start, n)
    assert working_days_between(start, due) == n
    assert working_days_between(due, start) == -n


@settings(max_examples=100, deadline=None)
@given(dates, counts)
def test_add_working_days_is_strictly_monotonic_in_n(start, n):
    assert add_working_days(start, n) < add_working_days(start, n + 1)
    assert add_working_days(start, n + 1) == next_working_day(add_working_days(start, n))


@settings(max_examples=100, deadline=None)
@given(dates, st.integers(0, 30), st.integers(0, 30), st.integers(0, 10))
def test_the_pause_never_shortens_the_time_left(received, used, left, waited):
    due = add_working_days(received, used + left)
    requested = add_working_days(received, used)
    supplied = add_working_days(requested, waited)
    new_due = due_after_supplement(due, requested, supplied)
    assert working_days_between(supplied, new_due) == left
    assert new_due == add_working_days(due, waited)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(dt.datetime(1976, 1, 1), dt.datetime(2099, 12, 31), timezones=st.just(dt.UTC)))
def test_the_fixed_offset_clock_agrees_with_the_zone_database(moment):
    try:
        zone = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time-zone database on this machine")
    assert clock.vietnam_time(moment) == moment.astimezone(zone)
    assert clock.vietnam_date(moment) == moment.astimezone(zone).date()


def test_the_store_reexports_the_one_clock():
    from dinhdanh.store import base

    assert base.vietnam_date is clock.vietnam_date and base.VIETNAM is clock.VIETNAM
    assert base.utcnow is clock.utcnow


# -- the command -------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_add_working_days_prints_the_iso_date_only():
    result = runner.invoke(app, ["calendar", "add-working-days", "2026-02-10", "5"])
    assert result.exit_code == 0 and result.stdout == "2026-02-24\n"


@pytest.mark.parametrize("args, named", [
    (["2026-02-10", "-1"], "N:"),
    (["2026-02-10", "4000"], "N:"),
    (["2026-02-10", "five"], "'N'"),
    (["2026-02-30", "5"], "START:"),
    (["10/02/2026", "5"], "START:"),
    (["2019-12-31", "5"], "START:"),
])
def test_cli_bad_input_exits_2_naming_the_argument(args, named):
    result = runner.invoke(app, ["calendar", "add-working-days", *args])
    assert result.exit_code == 2 and result.stdout == ""
    assert named in result.stderr


def test_cli_working_days_and_holidays():
    result = runner.invoke(app, ["calendar", "working-days", "2026-02-13", "2026-02-23"])
    assert result.exit_code == 0 and result.stdout == "1\n"
    bad = runner.invoke(app, ["calendar", "working-days", "2026-02-13", "2100-01-01"])
    assert bad.exit_code == 2 and "B:" in bad.stderr
    listed = runner.invoke(app, ["calendar", "holidays", "2026"])
    assert listed.exit_code == 0 and listed.stderr == ""
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows[:3] == [
        {"date": "2026-01-01", "weekday": "Thứ Năm", "kind": "holiday", "name": "Tết Dương lịch", "source": None},
        {"date": "2026-01-02", "weekday": "Thứ Sáu", "kind": "day_off",
         "name": "Nghỉ hoán đổi dịp Tết Dương lịch, làm bù ngày 10/01/2026", "source": rows[1]["source"]},
        {"date": "2026-01-10", "weekday": "Thứ Bảy", "kind": "working_day",
         "name": "Làm bù dịp Tết Dương lịch cho ngày 02/01/2026", "source": rows[1]["source"]},
    ]
    assert rows[1]["source"].startswith("Công văn 12729/VPCP-KGVX ngày 25/12/2025")
    future = runner.invoke(app, ["calendar", "holidays", "2027", "--lang", "en"])
    assert future.exit_code == 0 and "no decreed swaps recorded for 2027" in future.stderr
    assert json.loads(future.stdout.splitlines()[0])["name"] == "New Year's Day"
