"""The Government's decreed swaps of working days, kept as data (``decreed_swaps.json``).

Each year the Prime Minister (through the Government Office) agrees to move working days so that
a holiday joins a weekend: a weekday becomes a day off and a Saturday a working day, for the civil
service. The file holds each swap with the document that decreed it; the years it lists are the
years checked (``decrees_known``).

>>> swap = swaps_in(2026)[0]
>>> swap.day_off.isoformat(), swap.work_on.isoformat(), swap.occasion["vi"]
('2026-01-02', '2026-01-10', 'Tết Dương lịch')
>>> swap.source.split(" ngày ")[0]
'Công văn 12729/VPCP-KGVX'
>>> decrees_known(2026), decrees_known(1999)
(True, False)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SATURDAY, SUNDAY = 5, 6


@dataclass(frozen=True)
class Swap:
    """``day_off`` (a weekday) is not worked; ``work_on`` (a weekly rest day) is worked instead.

    Either may be None when a decree gave a day off without a make-up day, or the reverse."""

    day_off: dt.date | None
    work_on: dt.date | None
    occasion: dict[str, str]  # {"vi": ..., "en": ...}
    source: str


def _date(text: object, where: str) -> dt.date:
    if not isinstance(text, str) or not _ISO_DATE.fullmatch(text):
        raise ValueError(f"decreed_swaps.json: {where} must be a YYYY-MM-DD date")
    return dt.date.fromisoformat(text)


def _swap(entry: dict, where: str) -> Swap:
    day_off = _date(entry["day_off"], f"{where}.day_off") if entry.get("day_off") else None
    work_on = _date(entry["work_on"], f"{where}.work_on") if entry.get("work_on") else None
    if day_off is None and work_on is None:
        raise ValueError(f"decreed_swaps.json: {where} moves no day")
    if day_off is not None and day_off.weekday() >= SATURDAY:
        raise ValueError(f"decreed_swaps.json: {where}.day_off is already a weekly rest day")
    if work_on is not None and work_on.weekday() < SATURDAY:
        raise ValueError(f"decreed_swaps.json: {where}.work_on is already a working day")
    occasion, source = entry.get("occasion") or {}, entry.get("source")
    if not occasion.get("vi") or not occasion.get("en") or not source:
        raise ValueError(f"decreed_swaps.json: {where} needs an occasion (vi, en) and a source")
    return Swap(day_off, work_on, {"vi": occasion["vi"], "en": occasion["en"]}, source)


@cache
def _table() -> dict[int, tuple[Swap, ...]]:
    raw = json.loads(resources.files(__package__).joinpath("decreed_swaps.json").read_text("utf-8"))
    table = {}
    for year, body in raw["years"].items():
        swaps = tuple(_swap(entry, f"years.{year}.swaps[{i}]") for i, entry in enumerate(body["swaps"]))
        for swap in swaps:
            # a decree is filed under the year of its day off (the make-up day may fall in the year
            # before, as Saturday 27/12/2014 did for Friday 2/1/2015)
            if (swap.day_off or swap.work_on).year != int(year):
                raise ValueError(f"decreed_swaps.json: a swap under {year} falls in another year")
        table[int(year)] = swaps
    return table


def decrees_known(year: int) -> bool:
    """Whether the year's decreed swaps have been checked and recorded (none may have been made)."""
    return year in _table()


def swaps_in(year: int) -> tuple[Swap, ...]:
    """The swaps filed under ``year`` (empty for a year without swaps or not yet recorded)."""
    return _table().get(year, ())


def years() -> tuple[int, ...]:
    return tuple(sorted(_table()))
