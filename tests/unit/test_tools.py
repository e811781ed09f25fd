"""The external commands the tests call are all installed by `make tools` (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import tools

INSTALLER = tools.ROOT / "tools" / "install-tools.sh"


def test_every_command_named_in_the_code_is_listed() -> None:
    assert tools.unlisted_commands() == {}


def test_the_scanner_sees_each_way_a_command_is_named(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text('shutil.which("alpha")\nsubprocess.run(["beta", "-x"])\n'
                      'X = "/usr/bin/gamma"\ncmd = ["delta", "-q"]\nrequire("epsilon")\n')
    found = set(tools.external_commands([source], root=tmp_path))
    assert found == {"alpha", "beta", "gamma", "delta", "epsilon"}


def test_the_installer_installs_every_listed_debian_tool() -> None:
    text = INSTALLER.read_text()
    mapped = dict(re.findall(r"\[([\w.+-]+)\]=([\w.+-]+)", text))
    for tool in tools.TOOLS.values():
        if tool.package == "venv":
            assert tool.target == "make install"
            continue
        assert mapped.get(tool.command) == tool.package, tool.command
        assert tool.target == "make tools"


def test_a_missing_tool_fails_and_names_the_make_target(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(tools.sys, "executable", "/nonexistent/python")
    with pytest.raises(pytest.fail.Exception, match=r"run `make tools`.*docker-compose"):
        tools.require("docker-compose")


def test_an_unlisted_tool_is_refused() -> None:
    with pytest.raises(KeyError, match="TOOLS"):
        tools.require("no-such-tool")
