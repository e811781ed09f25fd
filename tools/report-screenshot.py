"""Screenshot an HTML committee report in headless Chromium at 1280 px: the README's image.

``make screenshot`` runs it after ``make year`` on the year's report with running totals
(``report --months 2019-01..2019-12 --since 2019-01 --format html``) and writes
docs/report-year.png. It opens the page with the browser test's own code
(tests/integration/browser.py) and refuses to write the image, naming what is wrong,
unless the page would show every section filled: the six sections and the running
totals there, every chart drawn (both timeliness charts among them), no table replaced
by its "No data" line, nothing past the screen's edge, no console error. How the page
prints on A4 is the browser test's concern: it is listed here, as a note only.

Not part of the test suite: it needs the running worker that ``make year`` started.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration import browser  # noqa: E402  (the repository root is on the path now)

#: The report's section ids (stream/report/tables.py, ``Report.sections``) and --since's.
SECTIONS = ("rfs", "map", "info_advice", "commentary", "audits", "feedback", "since")
TIMELINESS = ("chart-progress_early_help", "chart-progress_childrens_social_care")


def missing(page: str, seen: browser.Inspection) -> list[str]:
    """Why the screenshot would not show a filled report (empty: it would)."""
    out = browser.screen_problems(seen, SECTIONS)
    out += [f"table {key!r} says it has no data"
            for key in re.findall(r'<p class="no-data" id="no-data-([^"]+)"', page)]
    drawn = {c["id"] for c in seen.screen["charts"]}
    out += [f"chart {key!r} is not drawn" for key in TIMELINESS if key not in drawn]
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: tools/report-screenshot.py REPORT.html OUT.png", file=sys.stderr)
        return 2
    page, dest = Path(argv[0]), Path(argv[1])
    with tempfile.TemporaryDirectory(prefix="report-screenshot-") as tmp:
        seen = browser.inspect(page, Path(tmp))
        wrong = missing(page.read_text(encoding="utf-8"), seen)
        if wrong:
            print("not written:\n  " + "\n  ".join(wrong), file=sys.stderr)
            return 1
        shutil.copyfile(seen.screenshot, dest)
    for note in browser.problems(seen, SECTIONS):  # the screen's are none: print only
        print(f"note (on A4, not in the screenshot): {note}")
    print(f"{dest}: {browser.SCREEN_WIDTH} x {seen.screen['height']} px, "
          f"{dest.stat().st_size:,} bytes")
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
