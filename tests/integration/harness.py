"""Real parts for integration tests: a Kafka broker and worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from stream.dev.broker import BrokerConfig, LocalBroker
from stream.report.webclient import WebClient
from stream.settings import Settings
from stream.worker.localstate import new_key
from tests.groundtruth import Message

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
T = TypeVar("T")


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_broker(tmp_path: Path, **kwargs: Any) -> Iterator[LocalBroker]:
    """Start a broker in ``tmp_path``; stop it when the test ends."""
    cfg = BrokerConfig(tmp_path / "broker", port=free_port(), controller_port=free_port(),
                       cache_dir=CACHE, **kwargs)
    broker = LocalBroker(cfg)
    try:
        broker.start(timeout=90)
        yield broker
    finally:
        broker.stop()


def wait_for(check: Callable[[], T | None], timeout: float, what: str,
             interval: float = 0.25) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout.

    An ``OSError`` (a server not listening yet) is retried; any other exception, such as
    ``WorkerProcess.check_alive``'s for a worker that died, fails the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            got = check()
        except OSError as exc:  # not up yet, or busy: ask again (never an answer)
            last = exc
        else:
            if got:
                return got
            last = got
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def stop_group(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM,
               timeout: float = 30) -> None:
    """Signal a child started with ``start_new_session`` and its group; SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


class WorkerProcess:
    """``python -m stream worker`` as a child process with its own port and data dir."""

    def __init__(self, broker: str, workdir: Path, app_id: str = "cspa",
                 env: dict[str, str] | None = None, client: WebClient | None = None) -> None:
        #: credentials and CA for a worker given CSPA_WEB_CONFIG_FILE (https with a CA)
        self.client = client or WebClient()
        self.port = free_port()
        self.live_port = free_port()  # /live, served by a thread of its own
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "worker.log"
        self.env = {**os.environ, "CSPA_BROKER": broker, "CSPA_WEB_PORT": str(self.port),
                    "CSPA_LIVE_PORT": str(self.live_port),
                    "CSPA_DATA_DIR": str(workdir / "data"), "CSPA_APP_ID": app_id,
                    "CSPA_METRICS_MONTHS": "0",
                    # beside the data directory, not in it (stream.worker.localstate)
                    "CSPA_CHECKPOINT_KEY_FILE": str(new_key(workdir / "checkpoint.key")),
                    **(env or {})}
        self.app_id = self.env["CSPA_APP_ID"]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.client.cafile else 'http'}://127.0.0.1:{self.port}"

    @property
    def live_url(self) -> str:
        return f"http://127.0.0.1:{self.live_port}/live"

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "stream", "worker"], cwd=ROOT,
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for(self.ready, 90, "worker ready")
        return self

    def ready(self) -> bool:
        try:
            health = self.get_json("/ready")
            return bool(health.get("ready")) and bool(health.get("owned"))
        except OSError:
            return False

    def check_alive(self) -> None:
        """Fail at once, with the log's tail, if the worker this test started has exited.

        Every request below checks it first, so every wait that polls the worker fails
        when the worker dies rather than at its deadline (``wait_for`` retries only
        ``OSError``). A worker the test stopped or killed itself is not checked.
        """
        if self.proc is not None and (code := self.proc.poll()) is not None:
            raise AssertionError(f"worker exited with {code}; its log ends:\n"
                                 f"{self.log_tail()}")

    def get(self, path: str) -> bytes:
        self.check_alive()
        return self.client.get(self.url + path, timeout=5)

    def get_json(self, path: str) -> Any:
        try:
            return json.loads(self.get(path))
        except urllib.error.HTTPError as exc:  # 503 while recovering still has a body
            return json.loads(exc.read())

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics: (name, labels) -> value."""
        return parse_metrics(self.get("/metrics").decode())

    def pipeline_samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """The pipeline's own metrics (/metrics/pipeline): cheap enough to poll often."""
        return parse_metrics(self.get("/metrics/pipeline").decode())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        stop_group(self.proc, sig, timeout)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def registered_paths(settings: Settings) -> list[str]:
    """Every route of the worker's web app as its web server starts it (Faust adds its
    own then: ``init_server``), a placeholder in any variable part."""
    from stream.worker.app import create_app

    web = create_app(settings).app.web
    web.init_server()
    paths = {r.resource.canonical for r in web.web_app.router.routes() if r.resource}
    return sorted(p.replace("{", "").replace("}", "") for p in paths)


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def produce(bootstrap: str, messages: Iterable[Message], **kw: Any) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                linger_ms=5, **kw)
    await producer.start()
    deliveries = []
    try:
        for m in messages:
            deliveries.append(await producer.send(m.topic, m.value, key=m.key,
                                                  timestamp_ms=m.timestamp_ms))
        # A record the broker refuses must fail the test here, not time it out later.
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return len(deliveries)


def produce_sync(bootstrap: str, messages: Iterable[Message], **kw: Any) -> int:
    return asyncio.run(produce(bootstrap, messages, **kw))


#: the worker's own repartition topic, named for its app id (the harness's default
#: "cspa"): its records are hops, not events sent by a test
REKEY_TOPIC = "cspa-children-repartition"


def rekey_topic(app_id: str) -> str:
    """The repartition topic of the workers of ``app_id`` (topics/topics.toml)."""
    return f"{app_id}-children-repartition"


def consumed(worker: WorkerProcess) -> float:
    """Source events consumed; 0 while hops this incarnation sent are not yet folded (so
    a test waiting for ``consumed >= sent`` also waits for the repeat figures)."""
    samples = worker.samples()
    hops = total(samples, "cspa_events_consumed_total", topic=rekey_topic(worker.app_id))
    if hops < total(samples, "cspa_hops_sent_total"):
        return 0.0
    return total(samples, "cspa_events_consumed_total") - hops


async def _consume(bootstrap: str, topic: str, n: int, timeout: float) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            out += [r.value for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    return out


def consume_topic(bootstrap: str, topic: str, n: int, timeout: float = 30) -> list[bytes]:
    """Read at least ``n`` records from the start of a topic (or what came in ``timeout``)."""
    return asyncio.run(_consume(bootstrap, topic, n, timeout))
