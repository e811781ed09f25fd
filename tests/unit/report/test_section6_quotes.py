"""Section 6's quotes: which are printed (consent, months, withdrawal, key present), and
how (attribution and year; escaped in HTML)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from stream.contract.quotes import new_key, seal
from stream.contract.taxonomy import Taxonomy
from stream.report import ReportDefinitions, compute_report
from stream.report.quotes import latest_keys, open_quotes
from stream.report.render import render
from stream.report.tables import Quote
from stream.settings import Settings
from stream.state.aggregates import Aggregates
from tests import factories as f

LONDON = ZoneInfo("Europe/London")
AT = datetime(2019, 9, 20, 16, 0, tzinfo=LONDON)


def _raw(doc: dict) -> tuple[bytes, bytes]:  # type: ignore[type-arg]
    return doc["feedback_key"].encode(), orjson.dumps(doc)


def test_only_consented_unwithdrawn_quotes_of_the_months_whose_key_is_there_are_printed(
        taxonomy: Taxonomy) -> None:
    keys: list[tuple[bytes | None, bytes | None]] = []
    events = []
    cases = {name: f.key(name) for name in ("shown", "no_consent", "withdrawn", "no_key",
                                            "tombstoned", "other_month", "wrong_key")}
    for name, k in cases.items():
        key = new_key()
        at = AT.replace(month=11) if name == "other_month" else AT
        sealed = seal(f"quote {name}", key, k)
        events.append(_raw(f.quote_approved(k, at, sealed, consent=name != "no_consent")))
        if name != "no_key":
            keys.append((k.encode(), new_key() if name == "wrong_key" else key))
    events.append(_raw(f.withdrawn(cases["withdrawn"], AT.replace(day=25))))
    keys.append((cases["tombstoned"].encode(), None))
    found = open_quotes(events, latest_keys(keys), {"2019-09", "2019-10"}, taxonomy,
                        Settings())
    assert found == (Quote("quote shown", "Parent Feedback", 2019),)


def test_a_quote_prints_with_attribution_and_year_and_is_escaped_in_html(
        taxonomy: Taxonomy) -> None:
    quote = Quote('<b>"Thank you"</b> & more', "Police Colleagues", 2019)
    report = compute_report(Aggregates(), ["2019-09"], taxonomy, ReportDefinitions(),
                            quotes=(quote,))
    text = render(report, "text")
    assert '\u201c<b>"Thank you"</b> & more\u201d (Police Colleagues 2019).' in text
    assert "6. Then and Now" in text
    html = render(report, "html")
    assert "<b>" not in html.split("6. Then and Now", 1)[1]
    assert "&lt;b&gt;" in html
