"""Fees: per service version, per province and per channel (online filing is often cheaper), dated,
with exemptions as rules (Law on Civil Status art. 11: on-time birth and death registration are free).

The rate that applies is the most specific one in force: a province's own rate before the national
one ("*"), a channel's own before one for both, a rate with a condition (``when``, over the form's
facts) before one without, the newest before older; the first whose condition holds is taken
(tiers are tried in file order). Then, if an exemption's condition holds,
the fee is 0 and the answer names the exemption.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dinhdanh import places
from dinhdanh.dossiers.catalogue.conditions import MissingFact, holds
from dinhdanh.dossiers.catalogue.model import CHANNELS, Exemption, FeeRate, ServiceVersion
from dinhdanh.registry.errors import InvalidInput


@dataclass(frozen=True)
class Fee:
    amount: int  # what is due, VND
    currency: str
    base_amount: int  # the rate's amount before any exemption
    rate: FeeRate
    exemption: Exemption | None = None

    def as_dict(self, english: bool | None = None) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency, "base_amount": self.base_amount,
                "rate": self.rate.as_dict(),
                "exemption": self.exemption.as_dict(english) if self.exemption else None}


class FactRequired(InvalidInput):
    """The fee depends on a fact of the form that was not given (``field`` names it)."""

    code = "fact_required"


class FeeUnknown(InvalidInput):
    """The catalogue has no rate for this province and channel on that day."""

    code = "fee_unknown"


def fee_for(version: ServiceVersion, province_code: str, channel: str, on: dt.date,
            facts: Mapping[str, Any] | None = None) -> Fee:
    """The fee due for a dossier of ``version`` filed in ``province_code`` (2025 code) through
    ``channel`` (online | counter) on ``on``, given the form's ``facts``."""
    if province_code not in places.PROVINCES:
        raise InvalidInput(f"No province has code {province_code!r} (two digits, 2025 codes).",
                           field="province_code")
    if channel not in CHANNELS:
        raise InvalidInput("The channel is online or counter.", field="channel")
    facts = facts or {}
    fee = version.fee
    try:
        rate = next((r for r in _candidates(version, province_code, channel, on)
                     if r.when is None or holds(r.when, facts, on, version.optional)), None)
        if rate is None:
            raise FeeUnknown(f"The catalogue has no fee for {version.code} in province {province_code} "
                             f"({channel}) on {on.isoformat()}.", field="province_code")
        exemption = next((e for e in fee.exemptions if holds(e.when, facts, on, version.optional)), None)
    except MissingFact as missing:
        raise FactRequired(f"The fee depends on {missing.path}, which was not given.", field=missing.path) from None
    return Fee(0 if exemption else rate.amount, fee.currency, rate.amount, rate, exemption)


def fee_summary(version: ServiceVersion, on: dt.date) -> dict[str, Any]:
    """For listings: the lowest amount per channel in force on ``on`` ("from"), whether the fee varies
    by province or by facts of the dossier, the exemptions' codes and the refund rule."""
    rates = [r for r in version.fee.rates if r.in_force(on)]
    lowest = {ch: min((r.amount for r in rates if r.channel in (ch, "*")), default=None) for ch in CHANNELS}
    return {"currency": version.fee.currency, **lowest,
            "varies": any(r.province != "*" or r.when for r in rates),
            "exemptions": [e.code for e in version.fee.exemptions],
            "refund_on_refusal": version.fee.refund_on_refusal}


def _candidates(version: ServiceVersion, province_code: str, channel: str, on: dt.date) -> list[FeeRate]:
    rates = [r for r in version.fee.rates
             if r.in_force(on) and r.province in (province_code, "*") and r.channel in (channel, "*")]
    # stable sort: file order decides among equals (tiers are written in order)
    return sorted(rates, key=lambda r: (r.province == "*", r.channel == "*", r.when is None,
                                        -r.effective_from.toordinal()))
