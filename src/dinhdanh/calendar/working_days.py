"""Working days of Việt Nam's civil service, and the legal clock of a dossier counted in them.

A day is a working day when it is Monday to Friday, not a holiday of the Labour Code (2019 Code,
art. 112: 1/1, five days of Tết, Giỗ Tổ Hùng Vương 10/3 lunar, 30/4, 1/5, 2/9 with the day before
or after; Ngày Văn hóa Việt Nam 24/11 from 2026) nor its compensatory day for a holiday on a
weekend (art. 111(3)), all from the ``holidays`` package, and not a day off the Government
decreed; a Saturday the Government decreed a working day is one (``swaps``).

Deadlines follow the one-stop-shop practice: a time limit of N working days runs from the working
day after the dossier is received, and the N-th working day is the due date. A dossier received
after 17:00, or on a day that is not a working day, counts as received on the next working day
(``received_on``). While the agency waits for a supplement the clock stops: the working days left
at the request carry over to the day the supplement arrives (``due_after_supplement``); the
citizen has 7 working days to supply it (``supplement_deadline``).

>>> import datetime as dt
>>> add_working_days(dt.date(2026, 2, 10), 5)     # three days before Tết Bính Ngọ, two after
datetime.date(2026, 2, 24)
>>> is_working_day(dt.date(2026, 1, 2)), is_working_day(dt.date(2026, 1, 10))   # the New Year swap
(False, True)
>>> received_on(dt.datetime(2026, 2, 13, 17, 5, tzinfo=VIETNAM))     # Friday after 17:00, then Tết
datetime.date(2026, 2, 23)
>>> working_days_between(dt.date(2026, 2, 13), dt.date(2026, 2, 23))
1
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import holidays

from dinhdanh.calendar import swaps
from dinhdanh.calendar.clock import VIETNAM

FIRST_YEAR = 2020  # online dossiers (Decree 45/2020); the table of swaps starts in 2024
LAST_YEAR = 2099  # the package's lunar calendar runs to 2100
MAX_WORKING_DAYS = 3650  # about fourteen years: no legal time limit comes near it
RECEIPT_CUTOFF = dt.time(17, 0)  # received after this (Vietnamese time): the next working day
SUPPLEMENT_WORKING_DAYS = 7
LANGUAGES = {"vi": "vi", "en": "en_US"}  # ours -> the holidays package's
_ONE_DAY = dt.timedelta(days=1)
SATURDAY = 5
WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")


class CalendarError(ValueError):
    """Bad input to the calendar; ``field`` names the argument."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class CalendarDay:
    """A weekday that is not worked, or a weekend day that is, with its name and its source."""

    date: dt.date
    kind: str  # "holiday" (Labour Code, with compensatory days), "day_off" or "working_day" (decreed)
    name: str
    source: str | None = None

    def as_dict(self, language: str = "vi") -> dict:
        weekday = WEEKDAYS_VI[self.date.weekday()] if language == "vi" else self.date.strftime("%A")
        return {"date": self.date.isoformat(), "weekday": weekday, "kind": self.kind, "name": self.name,
                "source": self.source}


def _check_date(value: object, field: str) -> dt.date:
    # a datetime is a date to Python; here it would silently drop the hour that decides the day
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise CalendarError(field, "must be a date (YYYY-MM-DD); turn an instant into one with received_on")
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise CalendarError(field, f"the calendar covers {FIRST_YEAR} to {LAST_YEAR}")
    return value


def _check_count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CalendarError(field, "must be a whole number of working days")
    if not 0 <= value <= MAX_WORKING_DAYS:
        raise CalendarError(field, f"must be between 0 and {MAX_WORKING_DAYS} working days")
    return value


@cache
def _statutory(year: int, language: str = "vi") -> dict[dt.date, str]:
    """The Labour Code's holidays and compensatory days of ``year``, named in ``language``."""
    return dict(holidays.VN(years=year, language=LANGUAGES[language]))


@cache
def _decreed() -> tuple[dict[dt.date, swaps.Swap], dict[dt.date, swaps.Swap]]:
    days_off, work_on = {}, {}
    for year in swaps.years():
        for swap in swaps.swaps_in(year):
            if swap.day_off:
                days_off[swap.day_off] = swap
            if swap.work_on:
                work_on[swap.work_on] = swap
    return days_off, work_on


def _working(day: dt.date) -> bool:
    days_off, work_on = _decreed()
    if day in work_on:
        return True
    return day.weekday() < SATURDAY and day not in days_off and day not in _statutory(day.year)


def is_working_day(day: dt.date) -> bool:
    """Whether public offices work on ``day``.

    >>> import datetime as dt
    >>> is_working_day(dt.date(2026, 9, 1)), is_working_day(dt.date(2026, 8, 22))  # Quốc khánh swap
    (False, True)
    """
    return _working(_check_date(day, "day"))


def next_working_day(day: dt.date) -> dt.date:
    """The first working day after ``day``.

    >>> import datetime as dt
    >>> next_working_day(dt.date(2025, 4, 29))    # 30/4, 1/5, the swapped 2/5, then the weekend
    datetime.date(2025, 5, 5)
    """
    return add_working_days(_check_date(day, "day"), 1)


def add_working_days(start: dt.date, n: int) -> dt.date:
    """The N-th working day after ``start``: the due date of a dossier received on ``start``.

    ``start`` itself never counts (give the day ``received_on`` returns); ``n`` = 0 gives ``start``.

    >>> import datetime as dt
    >>> add_working_days(dt.date(2025, 4, 25), 1)   # Saturday 26/4/2025 was worked for Friday 2/5
    datetime.date(2025, 4, 26)
    """
    day = _check_date(start, "start")
    left = _check_count(n, "n")
    while left:
        day += _ONE_DAY
        if day.year > LAST_YEAR:
            raise CalendarError("n", f"the date would fall after {LAST_YEAR}, beyond the calendar")
        if _working(day):
            left -= 1
    return day


def working_days_between(a: dt.date, b: dt.date) -> int:
    """How many working days fall after ``a`` up to and including ``b`` (negative when b < a).

    So ``working_days_between(d, add_working_days(d, n)) == n``, and for a due date and today it
    is how many working days a dossier is late (or, negative, how many are left).

    >>> import datetime as dt
    >>> working_days_between(dt.date(2026, 4, 24), dt.date(2026, 5, 4))  # 28/4, 29/4 and 4/5
    3
    """
    first, last = _check_date(a, "a"), _check_date(b, "b")
    if last < first:
        return -working_days_between(last, first)
    count, day = 0, first
    while day < last:
        day += _ONE_DAY
        count += _working(day)
    return count


def received_on(moment: dt.datetime, cutoff: dt.time = RECEIPT_CUTOFF) -> dt.date:
    """The working day a dossier counts as received on, for one that arrived at ``moment``.

    ``moment`` must be aware (the database keeps UTC): a naive time would be read in whatever zone
    the server runs. Arrival at the cutoff exactly is still that day.

    >>> import datetime as dt
    >>> received_on(dt.datetime(2026, 3, 1, 9, 0, tzinfo=VIETNAM))          # a Sunday
    datetime.date(2026, 3, 2)
    >>> received_on(dt.datetime(2026, 3, 2, 9, 59, tzinfo=dt.UTC))          # 16:59 in Hà Nội
    datetime.date(2026, 3, 2)
    """
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError("moment", "must be an aware date and time (with its time zone)")
    local = moment.astimezone(VIETNAM)
    day = _check_date(local.date(), "moment")
    if _working(day) and local.time() <= cutoff:
        return day
    return next_working_day(day)


def due_date(received_at: dt.datetime, n: int) -> dt.date:
    """The due date of a dossier that arrived at ``received_at`` with a time limit of N working days.

    >>> import datetime as dt
    >>> due_date(dt.datetime(2026, 2, 10, 8, 0, tzinfo=VIETNAM), 5)
    datetime.date(2026, 2, 24)
    """
    return add_working_days(received_on(received_at), n)


def supplement_deadline(requested_on: dt.date) -> dt.date:
    """The last day for the citizen to supply what was asked on ``requested_on`` (7 working days);
    past it the dossier is refused.

    >>> import datetime as dt
    >>> supplement_deadline(dt.date(2026, 2, 12))    # Friday 13/2, then Tết: six more from 23/2
    datetime.date(2026, 3, 2)
    """
    return add_working_days(_check_date(requested_on, "requested_on"), SUPPLEMENT_WORKING_DAYS)


def due_after_supplement(due: dt.date, requested_on: dt.date, supplied_on: dt.date) -> dt.date:
    """The new due date once a requested supplement arrives: the clock stopped while it was awaited.

    The day the request went out is the last day counted; the working days after it up to ``due``
    run again from the day the supplement counts as received (``supplied_on``, from
    ``received_on``), as for a new dossier.

    >>> import datetime as dt
    >>> due_after_supplement(dt.date(2026, 3, 10), dt.date(2026, 3, 5), dt.date(2026, 3, 11))
    datetime.date(2026, 3, 16)
    """
    due = _check_date(due, "due")
    requested_on = _check_date(requested_on, "requested_on")
    supplied_on = _check_date(supplied_on, "supplied_on")
    if requested_on > due:
        raise CalendarError("requested_on", "after the due date: an overdue dossier gets an apology "
                            "slip with a new date first")
    if supplied_on < requested_on:
        raise CalendarError("supplied_on", "before the supplement was requested")
    return add_working_days(supplied_on, working_days_between(requested_on, due))


def year_days(year: int, language: str = "vi") -> list[CalendarDay]:
    """The weekdays of ``year`` that are not worked and the weekend days that are, in date order.

    >>> [(d.date.isoformat(), d.kind) for d in year_days(2026) if d.date.month == 1]
    [('2026-01-01', 'holiday'), ('2026-01-02', 'day_off'), ('2026-01-10', 'working_day')]
    """
    if isinstance(year, bool) or not isinstance(year, int) or not FIRST_YEAR <= year <= LAST_YEAR:
        raise CalendarError("year", f"must be a year from {FIRST_YEAR} to {LAST_YEAR}")
    if language not in LANGUAGES:
        raise CalendarError("language", "must be vi or en")
    days_off, work_on = _decreed()
    listed: dict[dt.date, CalendarDay] = {}
    for day, name in _statutory(year, language).items():
        if day.weekday() < SATURDAY:
            listed[day] = CalendarDay(day, "holiday", name)
    for day, swap in days_off.items():
        if day.year == year:
            listed[day] = CalendarDay(day, "day_off", _swap_name(swap, "day_off", language), swap.source)
    for day, swap in work_on.items():
        if day.year == year:
            listed[day] = CalendarDay(day, "working_day", _swap_name(swap, "working_day", language), swap.source)
    return [listed[day] for day in sorted(listed)]


def _swap_name(swap: swaps.Swap, kind: str, language: str) -> str:
    occasion = swap.occasion[language]
    if kind == "day_off":
        other = swap.work_on and swap.work_on.strftime("%d/%m/%Y")
        if language == "vi":
            return f"Nghỉ hoán đổi dịp {occasion}" + (f", làm bù ngày {other}" if other else "")
        return f"Day off for {occasion}" + (f", worked on {other} instead" if other else "")
    other = swap.day_off and swap.day_off.strftime("%d/%m/%Y")
    if language == "vi":
        return f"Làm bù dịp {occasion}" + (f" cho ngày {other}" if other else "")
    return f"Working day for {occasion}" + (f", in place of {other}" if other else "")
