"""Section 7's expected rates per 10,000 children, from the facts (no ``stream`` import).

A referral is a contact progressed to children's social care (any timeliness); MAP
enquiries are those completed; per month: count x 10,000 / children; annualised: the
months' counts summed x 10,000 / children x 12 / months. England's column: the rate the
shipped config/national_rates.toml publishes for the figure (read here with tomllib), else
N/A.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tests.reportgen.expected import Fig, Key
from tests.reportgen.facts import Facts


def expected_rates(f: Facts, months: Sequence[str], children: int) -> dict[Key, Fig]:
    """("rates", "<figure>_rate", month | "annualised" | "england") -> Fig."""
    counts = {
        "contacts": Counter(r[0] for r in f.received),
        "referrals": Counter(p[0] for p in f.progressions if p[1] == "childrens_social_care"),
        "map_enquiries": Counter(m[0] for m in f.map_done),
        "re_referrals": Counter(m for m, _, again in f.child_referrals if again),
    }
    out: dict[Key, Fig] = {}
    for name, per_month in counts.items():
        row = f"{name}_rate"
        for m in months:
            out[("rates", row, m)] = Fig(per_month[m] * 10_000 / children, "number")
        total = sum(per_month[m] for m in months)
        out[("rates", row, "annualised")] = Fig(total * 10_000 / children * 12 / len(months),
                                                "number")
        england = _published().get(name)
        out[("rates", row, "england")] = Fig("N/A") if england is None else Fig(england,
                                                                                 "number")
    return out


def _published() -> dict[str, float]:
    """figure -> England's rate, as config/national_rates.toml states it."""
    path = Path(__file__).resolve().parents[2] / "config" / "national_rates.toml"
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    return {k: float(v["rate"]) for k, v in doc.items() if "rate" in v}
