"""The catalogue's small condition language: when a fee rate or an exemption applies, when an
attachment is required. Pure: no I/O; facts are the dossier's form data (nested dicts).

A condition is JSON::

    {"all": [COND, ...]}   {"any": [COND, ...]}   {"not": COND}
    {"fact": "vehicle.value", "lte": 15000000}      (eq, ne, in, lt, lte, gt, gte)
    {"days_since": "child.date_of_birth", "lte": 60}  (whole days from that date to the day asked about)
    {"years_since": "applicant.date_of_birth", "lt": 16}  (whole years: an age on the day asked about)

>>> import datetime as dt
>>> on_time = {"days_since": "child.date_of_birth", "lte": 60}
>>> holds(on_time, {"child": {"date_of_birth": "2026-10-01"}}, dt.date(2026, 11, 30))
True
>>> holds(on_time, {"child": {"date_of_birth": "2026-10-01"}}, dt.date(2026, 12, 1))
False
>>> holds({"fact": "kind", "in": ["renewal", "reissue"]}, {"kind": "renewal"}, dt.date(2026, 1, 1))
True
>>> holds({"years_since": "born", "gte": 60}, {"born": "1966-12-06"}, dt.date(2026, 12, 5))
False
>>> holds({"fact": "ground", "eq": "disability"}, {}, dt.date(2026, 1, 1), optional={"ground"})
False
>>> holds(on_time, {}, dt.date(2026, 1, 1))
Traceback (most recent call last):
...
dinhdanh.dossiers.catalogue.conditions.MissingFact: child.date_of_birth
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Collection, Iterator, Mapping
from typing import Any

OPERATORS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lte": operator.le, "gt": operator.gt,
             "gte": operator.ge, "in": lambda value, choices: value in choices}
_COMPARE = ("eq", "ne", "in", "lt", "lte", "gt", "gte")
_SINCE = ("days_since", "years_since")


class MissingFact(LookupError):
    """A condition needs a fact (a form field) that was not given; ``path`` names it."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


class BadCondition(ValueError):
    """A condition in the data is malformed (caught when the catalogue is loaded)."""


def lookup(facts: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of nested mappings, or ``MissingFact``."""
    value: Any = facts
    for part in path.split("."):
        if not isinstance(value, Mapping) or value.get(part) is None:
            raise MissingFact(path)
        value = value[part]
    return value


def holds(condition: Mapping[str, Any], facts: Mapping[str, Any], on: dt.date,
          optional: Collection[str] = ()) -> bool:
    """Whether ``condition`` holds for ``facts`` on the day ``on``. Branches are evaluated lazily, so a
    fact is needed only when the answer depends on it. A missing fact raises ``MissingFact`` unless
    its path is ``optional`` (a field the form does not require): then it is simply absent, and a test
    on it fails (``ne`` passes)."""
    if "all" in condition:
        return all(holds(c, facts, on, optional) for c in condition["all"])
    if "any" in condition:
        return any(holds(c, facts, on, optional) for c in condition["any"])
    if "not" in condition:
        return not holds(condition["not"], facts, on, optional)
    op = _operator(condition)
    since_key = next((k for k in _SINCE if k in condition), None)
    subject = condition[since_key or "fact"]
    try:
        lookup(facts, subject)
    except MissingFact:
        if subject not in optional:
            raise
        return op == "ne"
    if since_key is not None:
        path = condition[since_key]
        raw = lookup(facts, path)
        try:
            since = raw if isinstance(raw, dt.date) else dt.date.fromisoformat(str(raw))
        except ValueError:
            raise MissingFact(path) from None  # not a date: as good as absent for deciding
        value: Any = (on - since).days if since_key == "days_since" else _years(since, on)
    else:
        value = lookup(facts, condition["fact"])
    try:
        return bool(OPERATORS[op](value, condition[op]))
    except TypeError:  # a text where a number was expected: the condition does not hold
        return False


def check(condition: Any) -> None:
    """Raise ``BadCondition`` unless ``condition`` is well formed."""
    if not isinstance(condition, Mapping) or not condition:
        raise BadCondition("a condition is a non-empty object")
    if "all" in condition or "any" in condition:
        key = "all" if "all" in condition else "any"
        if set(condition) != {key} or not isinstance(condition[key], list) or not condition[key]:
            raise BadCondition(f"{key!r} takes a non-empty list and nothing else")
        for c in condition[key]:
            check(c)
        return
    if "not" in condition:
        if set(condition) != {"not"}:
            raise BadCondition("'not' takes one condition and nothing else")
        check(condition["not"])
        return
    subject = next((k for k in ("fact", *_SINCE) if k in condition), None)
    if subject is None or not isinstance(condition[subject], str) or not condition[subject]:
        raise BadCondition("a test names a 'fact', 'days_since' or 'years_since' path")
    op = _operator(condition)
    if set(condition) != {subject, op}:
        raise BadCondition(f"unexpected keys {sorted(set(condition) - {subject, op})}")
    if op == "in" and not isinstance(condition[op], list):
        raise BadCondition("'in' takes a list")
    if subject in _SINCE and (isinstance(condition[op], bool) or not isinstance(condition[op], int)):
        raise BadCondition(f"{subject!r} compares with a whole number")


def paths(condition: Mapping[str, Any]) -> Iterator[str]:
    """Every fact path a condition reads (the loader checks each is a field of the form)."""
    for key in ("all", "any"):
        for c in condition.get(key, ()):
            yield from paths(c)
    if "not" in condition:
        yield from paths(condition["not"])
    for key in ("fact", *_SINCE):
        if key in condition:
            yield condition[key]


def _operator(condition: Mapping[str, Any]) -> str:
    found = [op for op in _COMPARE if op in condition]
    if len(found) != 1:
        raise BadCondition("a test has exactly one of " + ", ".join(_COMPARE))
    return found[0]


def _years(since: dt.date, on: dt.date) -> int:
    """Whole years from ``since`` to ``on`` (someone born on 29 February has a birthday on 1 March)."""
    years = on.year - since.year
    return years - 1 if (on.month, on.day) < (since.month, since.day) else years
