"""``python -m stream send`` gives every document the verdict the API and the worker give.

The table is ``tests.contract_cases``; the API and the decoder are compared on it in
``tests/unit/contract/test_contract_parity.py``. Here each document goes through the CLI as
a subprocess against a real broker: accepted ones are really sent (and must then
be on the topic, byte for byte what the producer API encodes), refused ones exit 2
before connecting.
"""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

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

    # What the CLI sent is what the API would have sent.
    for family in {f for f, _ in sent}:
        topic = load_topics()[family].name
        want = sorted(v for f, v in sent if f == family)
        got = consume_topic(broker.bootstrap, topic, len(want))
        assert sorted(got) == want
        assert all(orjson.loads(v)["schema_version"] == 1 for v in got)
