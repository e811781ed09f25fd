"""``python -m stream check``: one verdict per line, nothing echoed, the exit code."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from stream.cli import main
from tests.contract_cases import _iso
from tests.factories import key, received

K = key("check-one")
AT = datetime(2019, 9, 16, 9, 30, tzinfo=ZoneInfo("Europe/London"))
GOOD = json.loads(json.dumps(received(K, AT), default=_iso))  # JSON form


def run(tmp_path, capsys, lines: list[str]) -> tuple[int, list[str], str]:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code = main(["check", str(path)])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def test_every_line_gets_a_verdict_and_any_refusal_fails(tmp_path, capsys):
    big = json.dumps(GOOD | {"note": "x" * 70_000})  # as a string: its exact bytes
    code, out, err = run(tmp_path, capsys, [
        json.dumps({"family": "contacts", "key": K, "value": GOOD}),
        "",
        json.dumps({"topic": "cspa.contacts.v1", "key": K, "value": big}),
        json.dumps({"topic": "cspa.contacts.v1", "key": None, "value": GOOD}),
        json.dumps({"topic": "elsewhere", "key": K, "value": GOOD}),
        json.dumps({"family": "contacts", "key": K}),
        json.dumps({"family": "contacts", "key": K, "partition": 99, "value": GOOD}),
        "[1, 2",
    ])
    assert code == 1
    assert out[0] == "line 1: ok"
    assert out[1] == f"line 3: payload_too_large: {len(big.encode())} bytes > 65536"
    assert out[2] == "line 4: key_mismatch: message key differs from the event's case key"
    assert out[3].startswith("line 5: bad_line: topic (one of cspa.audits.v1,")
    assert out[4] == "line 6: bad_line: no value"
    assert out[5] == "line 7: bad_line: partition must be an integer from 0 to 5"
    assert out[6] == "line 8: bad_line: not valid JSON"
    assert err.strip() == "check: 7 messages, 1 ok, 6 refused"
    assert K not in "".join(out) + err and "elsewhere" not in "".join(out)


def test_all_ok_exits_0_and_an_unreadable_file_2(tmp_path, capsys):
    line = json.dumps({"family": "contacts", "key": K, "value": GOOD})
    assert run(tmp_path, capsys, [line, line])[:2] == (0, ["line 1: ok", "line 2: ok"])
    assert main(["check", str(tmp_path / "missing.jsonl")]) == 2
