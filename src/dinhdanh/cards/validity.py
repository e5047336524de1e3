"""How long a card lasts (Law on Identification 2023, art. 21).

A card must be renewed when its holder turns 14, 25, 40 and 60. A card issued within two years
before a milestone lasts to the next one; a card issued at 58 or older does not expire. A card
expires on the holder's birthday in the milestone year (29 February becomes 28 February).

>>> import datetime as dt
>>> expiry_date(dt.date(1995, 3, 8), dt.date(2021, 6, 1))   # 26: to the 40th birthday
datetime.date(2035, 3, 8)
>>> expiry_date(dt.date(1998, 3, 8), dt.date(2021, 6, 1))   # 23, within two years of 25: to 40
datetime.date(2038, 3, 8)
>>> expiry_date(dt.date(1960, 1, 1), dt.date(2021, 6, 1)) is None   # 61: never expires
True
>>> next_milestone(dt.date(2010, 2, 1), dt.date(2026, 11, 26))
25
"""

from __future__ import annotations

import datetime as dt

MILESTONES = (14, 25, 40, 60)
GRACE_YEARS = 2


def age_on(born: dt.date, day: dt.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def birthday(born: dt.date, year: int) -> dt.date:
    if born.month == 2 and born.day == 29:
        try:
            return dt.date(year, 2, 29)
        except ValueError:
            return dt.date(year, 2, 28)
    return born.replace(year=year)


def next_milestone(born: dt.date, issued: dt.date) -> int | None:
    """The age at which a card issued on ``issued`` must be renewed; None if it never expires."""
    age = age_on(born, issued)
    for milestone in MILESTONES:
        if age < milestone - GRACE_YEARS:
            return milestone
    return None


def expiry_date(born: dt.date, issued: dt.date) -> dt.date | None:
    milestone = next_milestone(born, issued)
    return None if milestone is None else birthday(born, born.year + milestone)


def is_expired(expiry: dt.date | None, today: dt.date) -> bool:
    return expiry is not None and today > expiry
