"""``python -m stream send`` and ``check`` give every document the verdict the API and the
worker give.

The table is ``tests.contract_cases``; the API and the decoder are compared on it in
``tests/unit/contract/test_contract_parity.py``. Here each document goes through the CLI as
a subprocess against a real broker: accepted ones are really sent (and must then
be on the topic, byte for byte what the producer API encodes), refused ones exit 2
before connecting. ``check`` reads every document at once as JSON Lines (the value
as its exact bytes, and as a JSON object) and must give each the worker's verdict,
with the worker's reason and detail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import orjson
import pytest

from stream.contract.decoder import Decoder, Rejection
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import load_topics
from stream.upstream.producer import EventValidator, encode
from tests.contract_cases import CASES
from tests.integration.harness import ROOT, consume_topic
from tests.unit.contract.test_contract_parity import by_build, by_decoder

pytestmark = pytest.mark.integration


def send(bootstrap: str, value: bytes) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CSPA_BROKER": bootstrap}
    return subprocess.run([sys.executable, "-m", "stream", "send", "-"], input=value, cwd=ROOT,
                          env=env, capture_output=True, timeout=120, check=False)


def check(cases) -> tuple[subprocess.CompletedProcess[bytes], list[str]]:
    """``python -m stream check -`` on each case twice: value as bytes, as a JSON object."""
    lines = []
    for case in cases:
        message = {"family": case.family, "key": case.kafka_key().decode()}
        lines.append(json.dumps(message | {"value": case.wire().decode()}))
        lines.append(json.dumps(message | {"value": json.loads(case.wire())}))
    result = subprocess.run([sys.executable, "-m", "stream", "check", "-"],
                            input="\n".join(lines).encode(), cwd=ROOT, capture_output=True,
                            timeout=120, check=False, env={**os.environ, "CSPA_BROKER": "-"})
    return result, result.stdout.decode().splitlines()


def worker_verdict(taxonomy, case) -> str:
    result = Decoder(case.family, taxonomy).decode(case.kafka_key(), case.wire(), time.time())
    return f"{result.reason}: {result.detail}" if isinstance(result, Rejection) else "ok"


def test_cli_api_and_decoder_give_the_same_verdict(broker):
    from stream.cli import ensure_topics
    from stream.settings import Settings

    ensure_topics(Settings(broker=broker.bootstrap))
    taxonomy = load_taxonomy()
    validator = EventValidator(taxonomy)
    verdicts, sent = {}, []
    for case in CASES:
        result = send(broker.bootstrap, case.wire())
        assert result.returncode in (0, 2), (case.name, result.stderr.decode()[-2000:])
        by_api, by_worker = by_build(validator, case), by_decoder(taxonomy, case)
        verdicts[case.name] = (result.returncode == 0, by_api is not None,
                               by_worker is not None)
        if by_api is not None and result.returncode == 0:
            sent.append((case.family, encode(by_api)))
    assert verdicts == {c.name: (c.accepted,) * 3 for c in CASES}

    # check: the worker's verdict, reason and detail, for the bytes and the object.
    result, printed = check(CASES)
    assert result.returncode == 1  # some cases are refused
    assert printed == [f"line {2 * i + j}: {worker_verdict(taxonomy, c)}"
                       for i, c in enumerate(CASES) for j in (1, 2)]
    assert [p.endswith(": ok") for p in printed[::2]] == [c.accepted for c in CASES]
    accepted = [c for c in CASES if c.accepted]
    assert check(accepted)[0].returncode == 0

    # What the CLI sent is what the API would have sent.
    for family in {f for f, _ in sent}:
        topic = load_topics()[family].name
        want = sorted(v for f, v in sent if f == family)
        got = consume_topic(broker.bootstrap, topic, len(want))
        assert sorted(got) == want
        assert all(orjson.loads(v)["schema_version"] == 1 for v in got)
