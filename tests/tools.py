"""The external commands the tests call, and the `make` target that installs each.

Every test that runs a program outside the virtualenv gets its path from
:func:`require`, and only for a command listed in :data:`TOOLS`. `.ci/check-tools`
checks that every command listed here resolves after `make tools`, and
tests/unit/test_tools.py fails when a test or benchmark names a command that is
not listed. A new tool therefore needs its install step before its first run.
A missing tool fails the test (never skips) and names the target that installs it.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Tool:
    """One external command: where it comes from and which target installs it."""

    command: str
    package: str  # Debian package (or "venv" for what `make install` puts in .venv)
    target: str   # the make target that installs it
    purpose: str


TOOLS: dict[str, Tool] = {t.command: t for t in (
    Tool("promtool", "prometheus", "make tools", "check rules, metrics, configs"),
    Tool("prometheus", "prometheus", "make tools", "the real Prometheus of the integration tests"),
    Tool("docker-compose", "docker-compose", "make tools", "validate docker-compose.yml"),
    Tool("chromium", "chromium", "make tools", "render the HTML report headless"),
    Tool("java", "default-jre-headless", "make tools", "run the local Kafka broker"),
    Tool("mvn", "maven", "make tools", "fetch the Kafka jars from Maven Central"),
    Tool("hostname", "hostname", "make tools", "list this machine's addresses (privacy test)"),
    Tool("gcc", "build-essential", "make tools",
         "compile the worker's murmur2 at make install (setup.py)"),
    Tool("python3.11-config", "python3.11-dev", "make tools",
         "Python's C headers, for the same compile"),
    Tool("py-spy", "venv", "make install", "profile the worker in the benchmark"),
)}


# How a program outside Python is named in this repository's code: a `which`, a
# `require`, a `run`/`Popen` whose argument list starts with a literal, or /usr/bin.
_NAMED = re.compile(
    r"""(?:which|require|need)\(\s*["']([\w.+-]+)["']"""
    r"""|(?:run|Popen)\(\s*\[\s*["']([\w.+-]+)["']"""
    r"""|["']/usr/bin/([\w.+-]+)["']"""
    r"""|\b(?:cmd|command|exe)\s*=\s*\[\s*["']([\w.+-]+)["']""")
ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "bench", "stream", ".ci", "tools")
EXEMPT = {"tests/unit/test_tools.py"}  # plants made-up names to test the scanner


def external_commands(paths: Iterable[Path] | None = None,
                      root: Path = ROOT) -> dict[str, list[str]]:
    """Every external command named in the code, with the files that name it."""
    if paths is None:
        paths = [p for d in SCANNED for p in sorted((ROOT / d).rglob("*.py"))
                 if str(p.relative_to(ROOT)) not in EXEMPT]
    found: dict[str, list[str]] = {}
    for path in paths:
        for match in _NAMED.finditer(path.read_text(encoding="utf-8")):
            name = next(g for g in match.groups() if g)
            found.setdefault(name, []).append(str(path.relative_to(root)))
    return found


def unlisted_commands() -> dict[str, list[str]]:
    """Commands named in the code that TOOLS does not list (so nothing installs them)."""
    return {c: files for c, files in external_commands().items() if c not in TOOLS}


def resolve(command: str) -> str | None:
    """The path of ``command``: on PATH, or beside this Python (the venv's own scripts)."""
    beside = Path(sys.executable).parent / command
    return shutil.which(command) or (str(beside) if beside.exists() else None)


def missing_message(command: str) -> str:
    tool = TOOLS[command]
    return (f"`{command}` is not installed ({tool.purpose}): run `{tool.target}`, "
            f"which installs Debian's {tool.package} package")


def require(command: str) -> str:
    """The path of ``command``; fails the calling test (never skips) when it is missing."""
    if command not in TOOLS:
        raise KeyError(f"{command} is not in tests/tools.py TOOLS: add it with its install step")
    path = resolve(command)
    if path is None:
        pytest.fail(missing_message(command))
    return path
