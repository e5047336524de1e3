"""Which 6-digit passcodes are refused as too easy to guess (pure functions, no database).

A passcode is refused with ``InvalidInput`` code ``weak_passcode`` (field ``passcode``, 422) when:

- **all one digit**: 000000, 111111, ... 999999;
- **a run**: each digit one more than the one before (123456, 456789) or one less (654321, 987654),
  **wrap-around included**: counting on from 9 to 0 (890123, 901234) or back from 0 to 9 (109876,
  210987) is still "the next key", as people type it, so it is refused too;
- **the holder's date of birth** (or an organisation's founding date) in any 6-digit form people use
  (``date_forms``): DDMMYY, MMDDYY, YYMMDD, YYDDMM, the 6-digit pieces of DDMMYYYY and YYYYMMDD
  (DDMMCC - e.g. 150519 for 15/05/1990 -, MMYYYY, YYYYMM), DDYYYY, YYYYDD, and D M YYYY written
  without leading zeros when day and month are both one digit (1/5/1990 -> 151990);
- **the last 6 digits of the username** (a citizen's PID, a foreigner's number when it ends in
  six digits).

The rules are checked wherever a passcode is set: enrolment at the counter, activation in the app,
a change of passcode, a foreigner's or an organisation's account.
"""

from __future__ import annotations

import datetime as dt
import re

from dinhdanh.registry.errors import InvalidInput

__all__ = ["date_forms", "weakness", "check_strength"]


def _run(passcode: str, step: int) -> bool:
    digits = [int(c) for c in passcode]
    return all((b - a) % 10 == step % 10 for a, b in zip(digits, digits[1:]))


def date_forms(day: dt.date) -> set[str]:
    """Every 6-digit form of ``day`` the rules refuse (see the module's doc)."""
    d, m, yyyy = f"{day.day:02d}", f"{day.month:02d}", f"{day.year:04d}"
    yy, cc = yyyy[2:], yyyy[:2]
    forms = {d + m + yy, m + d + yy, yy + m + d, yy + d + m, d + m + cc, m + yyyy, yyyy + m, d + yyyy, yyyy + d}
    if day.day < 10 and day.month < 10:
        forms |= {f"{day.day}{day.month}{yyyy}", f"{day.month}{day.day}{yyyy}"}
    return {f for f in forms if len(f) == 6}


def weakness(passcode: str, *, born: dt.date | None = None, username: str | None = None) -> str | None:
    """Why ``passcode`` is refused (``same_digit``, ``ascending``, ``descending``, ``date_of_birth``,
    ``username``), or None when it is acceptable. ``passcode`` is already 6 digits."""
    if len(set(passcode)) == 1:
        return "same_digit"
    if _run(passcode, 1):
        return "ascending"
    if _run(passcode, -1):
        return "descending"
    if born is not None and passcode in date_forms(born):
        return "date_of_birth"
    if username and re.fullmatch(r".*[0-9]{6}", username) and passcode == username[-6:]:
        return "username"
    return None


MESSAGES = {
    "same_digit": "The passcode must not be one digit repeated.",
    "ascending": "The passcode must not be a run of ascending digits.",
    "descending": "The passcode must not be a run of descending digits.",
    "date_of_birth": "The passcode must not be the date of birth.",
    "username": "The passcode must not be the last six digits of the identification number.",
}


def check_strength(passcode: str, *, born: dt.date | None = None, username: str | None = None) -> str:
    """``passcode`` when acceptable; raises ``InvalidInput(weak_passcode)`` naming the rule otherwise."""
    why = weakness(passcode, born=born, username=username)
    if why is not None:
        raise InvalidInput(MESSAGES[why], code="weak_passcode", field="passcode")
    return passcode
