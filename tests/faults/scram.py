"""The worker on a broker that demands SCRAM-SHA-512 credentials, over SASL_PLAINTEXT or
SASL_SSL: the broker, the worker's environment, the same settings for the test's own
clients, and the exact-figures run both SASL fault tests make.

One environment is the source of the worker's settings and of the test's: what the test
checks is what the worker was told."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stream.dev.broker import LocalBroker
from stream.settings import Settings
from tests.faults.conftest import counted, produce_tracked, read_deadletter, wait_caught_up
from tests.groundtruth import Dataset, expected
from tests.integration.harness import WorkerProcess, make_broker, total
from tests.integration.test_pipeline import assert_figures_match

USER = "cspa-worker"


def make_scram_broker(tmp_path: Path, password: str, **config: Any) -> Iterator[LocalBroker]:
    """A broker whose only client user is ``USER`` with ``password`` (for a fixture)."""
    yield from make_broker(tmp_path, sasl_scram=True, scram_user=USER,
                           scram_password=password, **config)


def scram_env(protocol: str, password: str, cafile: Path | None = None) -> dict[str, str]:
    """The worker's ``CSPA_*`` variables for ``USER`` over ``protocol``."""
    env = {"CSPA_SECURITY_PROTOCOL": protocol, "CSPA_SASL_MECHANISM": "SCRAM-SHA-512",
           "CSPA_SASL_USERNAME": USER, "CSPA_SASL_PASSWORD": password}
    return env | ({"CSPA_SSL_CAFILE": str(cafile)} if cafile else {})


def settings_of(bootstrap: str, env: dict[str, str]) -> Settings:
    """The settings a worker started with ``env`` reads (the field names are unprefixed)."""
    return Settings(broker=bootstrap, **{k.removeprefix("CSPA_").lower(): v
                                         for k, v in env.items()})


@contextmanager
def exact_worker(bootstrap: str, workdir: Path, env: dict[str, str],
                 ds: Dataset) -> Iterator[WorkerProcess]:
    """A worker started with ``env`` that has folded ``ds``, sent with the same credentials:
    nothing lost or counted twice, every figure exact, every bad event in the dead-letter
    topic (written by the worker's own producer). Yields it for more checks; stops it after."""
    auth = settings_of(bootstrap, env).kafka_client_kwargs()
    worker = WorkerProcess(bootstrap, workdir, env=env)
    try:
        worker.start()
        produce_tracked(bootstrap, ds.messages, **auth)
        wait_caught_up(worker, timeout=120)
        samples = worker.samples()
        assert counted(samples, expected(ds)) == (0, 0)
        assert_figures_match(samples, expected(ds))
        assert total(samples, "cspa_events_rejected_total") == ds.bad
        dead = read_deadletter(bootstrap, ds.bad, **auth)
        assert len({(d["partition"], d["offset"]) for d in dead}) == ds.bad
        yield worker
    finally:
        worker.stop()
