"""docs/contract.md and the code agree: rejection details, reasons, dead-letter fields.

The examples in the "Rejected messages" section are a JSON Lines block and the
output ``python -m stream check`` gives for it, written as an integrator reads them;
the worker's own decoder (through ``check``) must give exactly that output.
"""

from __future__ import annotations

import re

import orjson

from stream.contract.decoder import REASONS, Rejection
from stream.contract.partitioner import wrong_partition_detail
from stream.settings import ROOT, Settings
from stream.upstream.check import Checker
from stream.worker.processor import deadletter_message

DOC = (ROOT / "docs" / "contract.md").read_text()


def _block(lang: str) -> list[str]:
    [block] = re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)
    return block.splitlines()


def test_the_documented_examples_get_the_documented_verdicts():
    lines = [line.encode() for line in _block("jsonl")]
    got = [f"line {n}: {v}" for n, v in Checker(Settings()).verdicts(lines)]
    assert len(got) == 12
    assert got == _block("text")


def test_every_detail_the_prose_quotes_is_the_code_s():
    shown = _block("text")
    # The corrections section's detail is one the examples produce.
    assert "detail `recorded_at: recorded_before_occurred`" in DOC
    assert "line 2: invalid_value: recorded_at: recorded_before_occurred" in shown
    assert f"detail `{wrong_partition_detail(1, 4)}`" in DOC


def test_the_documented_reasons_are_the_closed_set():
    section = DOC[DOC.index("\nReasons: "):]
    listed = re.findall(r"`([a-z_0-9]+)`", section[: section.index("(`REASONS`")])
    assert listed == list(REASONS)


def test_the_documented_dead_letter_fields_are_the_message_s():
    section = DOC[DOC.index("## Rejected messages"):]
    table = section[section.index("| field |"): section.index("\n\n", section.index("| field |"))]
    documented = {f for row in table.splitlines()[2:]
                  for f in re.findall(r"`([a-z_0-9]+)`", row.split("|")[1])}
    message = orjson.loads(deadletter_message("t", 0, 1, 2.0, b"k", b"v",
                                              Rejection("invalid_json", "d")))
    assert documented == set(message)
