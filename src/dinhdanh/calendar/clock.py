"""The one clock: instants are UTC, days are Việt Nam's.

Việt Nam has kept UTC+7 all year since 13 June 1975 (no daylight saving), so a fixed offset gives
the same dates and times as the ``Asia/Ho_Chi_Minh`` zone for every instant the platform records,
and needs no time-zone database on the machine (a test checks the two agree). Printed dates, ages,
expiries, partners' daily quotas, the telcos' ladder and dossier deadlines all count Vietnamese
days. Functions take the moment as an argument (now by default), so tests inject their own.

>>> import datetime as dt
>>> vietnam_date(dt.datetime(2026, 2, 16, 17, 30, tzinfo=dt.UTC))   # 00:30 on the 17th in Hà Nội
datetime.date(2026, 2, 17)
>>> vietnam_time(dt.datetime(2026, 2, 16, 9, 59, tzinfo=dt.UTC)).isoformat()
'2026-02-16T16:59:00+07:00'
"""

from __future__ import annotations

import datetime as dt

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def vietnam_time(moment: dt.datetime | None = None) -> dt.datetime:
    """``moment`` (an aware datetime; now by default) on Việt Nam's clock."""
    return (moment or utcnow()).astimezone(VIETNAM)


def vietnam_date(moment: dt.datetime | None = None) -> dt.date:
    """The date in Việt Nam at ``moment`` (an aware datetime; now by default)."""
    return vietnam_time(moment).date()
