"""Regenerate the committed dashboard JSON: ``python -m grafana.dashboards_src.build``.

``--check`` writes nothing and exits 1 if a committed file differs from what the code
generates now. The dashboards are built with grafana-foundation-sdk pinned to the build
for Grafana 11.6 (the version in docker-compose.yml); another build would change the
schema, so it is refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SDK_PIN = "1769699379!11.6.0"  # pip install 'grafana-foundation-sdk==1769699379!11.6.0'
OUT = Path(__file__).resolve().parent.parent / "dashboards"


def _builders() -> dict[str, Callable[[], object]]:
    from grafana.dashboards_src import front_door, monthly, pipeline, timeliness

    return {"front-door-now.json": front_door.build, "monthly-performance.json": monthly.build,
            "timeliness.json": timeliness.build, "pipeline-health.json": pipeline.build}


def generate() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    try:
        installed = version("grafana-foundation-sdk")
    except PackageNotFoundError:
        installed = "not"
    if installed != SDK_PIN:
        raise RuntimeError(f"grafana-foundation-sdk {installed} installed; the dashboards are "
                           f"built with {SDK_PIN} (Grafana 11.6): "
                           f"pip install 'grafana-foundation-sdk=={SDK_PIN}'")
    from grafana.dashboards_src.common import render

    return {name: render(build()) for name, build in _builders().items()}  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed file drifted")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generate().items():
        path = OUT / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(OUT.parent.parent)}")
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + " (run python -m grafana.dashboards_src.build)")
        return 1
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a script: import from the repository root instead
        sys.path[0] = str(Path(__file__).resolve().parents[2])
    sys.exit(main())
