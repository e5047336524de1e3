"""Vietnamese mobile numbers (MSISDN): the one national form they are compared and stored in.

The same number is written ``+84 90 123 4567``, ``84901234567`` or ``090.123.4567``; ``compact``
keeps the digits and turns the country code into the national ``0``.

>>> compact('+84 90 123 4567')
'0901234567'
>>> compact('84901234567')
'0901234567'
>>> compact('090.123.4567')
'0901234567'
>>> compact('0901234567')
'0901234567'
"""

from __future__ import annotations

import re


def compact(number: str) -> str:
    """Digits only, in the national form (a leading ``+84``, or ``84`` on 11 digits, becomes ``0``)."""
    digits = re.sub(r"[^0-9]", "", number or "")
    if (number or "").strip().startswith("+84") or (digits.startswith("84") and len(digits) == 11):
        return "0" + digits[2:]
    return digits
