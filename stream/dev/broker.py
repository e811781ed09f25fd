"""Local Apache Kafka brokers (KRaft mode) built from Maven Central jars.

No Docker: the jars listed in ``tools/kafka/pom.xml`` are fetched once with Maven into a cache
directory and each broker runs as a plain ``java`` child process in its own session. A
``LocalBroker`` is one node that is its own controller quorum (the development default);
a ``LocalCluster`` is several such nodes sharing one quorum (the cluster fault test).

Library use::

    with LocalBroker(BrokerConfig(data_dir=Path("/tmp/b"), port=29092)) as broker:
        asyncio.run(create_topics(broker.bootstrap, [("events", 3, {})]))

CLI: ``python -m stream.dev.broker start|stop|status|logs [--data-dir DIR] [--port N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from aiokafka.admin import (  # type: ignore[import-untyped,unused-ignore]
    AIOKafkaAdminClient,
    NewTopic,
)
from aiokafka.errors import (  # type: ignore[import-untyped,unused-ignore]
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

KAFKA_VERSION = "4.1.1"
TOOLS_DIR = Path(__file__).resolve().parents[2] / "tools" / "kafka"
_T = TypeVar("_T")


def _tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a text file (empty string if missing)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def ensure_jars(cache_dir: Path) -> Path:
    """Fetch the Kafka jars into ``cache_dir/kafka-VERSION/lib`` once; return that lib dir.

    A marker file holds a hash of ``tools/kafka/pom.xml``: editing the pom refetches the jars.
    """
    root = cache_dir.resolve() / f"kafka-{KAFKA_VERSION}"
    lib, marker, log = root / "lib", root / ".complete", root / "mvn.log"
    pom = TOOLS_DIR / "pom.xml"
    stamp = f"{KAFKA_VERSION} {hashlib.sha256(pom.read_bytes()).hexdigest()}\n"
    root.mkdir(parents=True, exist_ok=True)
    if not (ignore := cache_dir / ".gitignore").exists():
        ignore.write_text("*\n")  # keep jars and broker data out of git, like .mypy_cache
    with open(root / ".lock", "w") as lock:  # serialise concurrent first-time downloads
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == stamp:
            return lib
        marker.unlink(missing_ok=True)
        shutil.rmtree(lib, ignore_errors=True)
        cmd = ["mvn", "-q", "-B", "-f", str(pom), f"-Dkafka.version={KAFKA_VERSION}",
               "dependency:copy-dependencies", f"-DoutputDirectory={lib}"]
        with open(log, "w") as out:
            rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=root)
        if rc != 0 or not any(lib.glob("kafka_2.13-*.jar")):
            raise RuntimeError(f"maven failed (rc={rc}), see {log}:\n{_tail(log)}")
        marker.write_text(stamp)
    return lib


@dataclass
class BrokerConfig:
    """Settings of one local broker; ``data_dir`` holds logs, config, pid file and output."""

    data_dir: Path
    port: int = 19092
    controller_port: int = 19093
    heap: str = "512m"
    sasl_scram: bool = False
    scram_user: str = "admin"
    scram_password: str = "admin-secret"
    extra: dict[str, str] = field(default_factory=dict)
    cache_dir: Path = Path(".cache")
    #: this node's id in the KRaft quorum
    node_id: int = 1
    #: several nodes' controller quorum (node id -> its controller port); None: this node
    #: alone is the quorum (formatted ``--standalone``)
    voters: dict[int, int] | None = None
    #: the KRaft cluster id the data dir is formatted with (every node of one cluster
    #: needs the same); None: a new one
    cluster_id: str | None = None
    #: more SCRAM users (name -> password) created at format time, beside ``scram_user``
    scram_users: dict[str, str] = field(default_factory=dict)
    #: a second client listener, SASL_SSL (TLS, then SCRAM), on this port; needs
    #: ``sasl_scram`` and ``ssl_keystore``
    ssl_port: int | None = None
    #: PEM file holding the broker's private key (unencrypted PKCS#8) and certificate chain
    ssl_keystore: Path | None = None
    #: KRaft's StandardAuthorizer, denying whatever no ACL allows; super users: the SCRAM
    #: admin (``scram_user``, also the inter-broker principal) and ``User:ANONYMOUS``, the
    #: principal of the PLAINTEXT controller listener (loopback only here; a real cluster
    #: authenticates it, see docs/security.md)
    authorizer: bool = False

    def properties(self) -> dict[str, str]:
        """Return the ``server.properties`` entries for this configuration."""
        p, c = self.port, self.controller_port
        client = "SASL_PLAINTEXT" if self.sasl_scram else "PLAINTEXT"
        # Kafka's internal topics: replicated as far as the nodes allow (3 and 2 in sync on
        # three nodes, so one node may die), 1 on a single node.
        nodes = len(self.voters) if self.voters else 1
        rf, isr = str(min(nodes, 3)), str(max(1, min(nodes - 1, 2)))
        quorum = ({"controller.quorum.voters": ",".join(
                      f"{i}@127.0.0.1:{port}" for i, port in sorted(self.voters.items()))}
                  if self.voters else {"controller.quorum.bootstrap.servers": f"127.0.0.1:{c}"})
        tls = f",SASL_SSL://127.0.0.1:{self.ssl_port}" if self.ssl_port else ""
        props = {
            "process.roles": "broker,controller", "node.id": str(self.node_id), **quorum,
            "listeners": f"{client}://127.0.0.1:{p}{tls},CONTROLLER://127.0.0.1:{c}",
            "advertised.listeners": f"{client}://127.0.0.1:{p}{tls}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map":
                f"{client}:{client},CONTROLLER:PLAINTEXT" + (",SASL_SSL:SASL_SSL" if tls else ""),
            "inter.broker.listener.name": client,
            "log.dirs": str(self.data_dir.resolve() / "kraft-logs"),
            "offsets.topic.replication.factor": rf, "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr, "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr,
            "group.initial.rebalance.delay.ms": "0", "log.cleaner.dedupe.buffer.size": "2097152",
            "auto.create.topics.enable": "false",
            # After kill -9 the controller keeps the dead broker's session until it expires;
            # the restarted broker cannot register before that (default 9 s -> ~12 s restarts).
            "broker.session.timeout.ms": "4000", "broker.heartbeat.interval.ms": "1000",
        }
        if self.sasl_scram:
            jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{self.scram_user}" password="{self.scram_password}";')
            props |= {"sasl.enabled.mechanisms": "SCRAM-SHA-512",
                      "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
                      "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": jaas}
        if self.ssl_port:
            if not (self.sasl_scram and self.ssl_keystore):
                raise ValueError("ssl_port needs sasl_scram and ssl_keystore")
            props |= {"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
                      "ssl.keystore.type": "PEM",
                      "ssl.keystore.location": str(self.ssl_keystore.resolve())}
        if self.authorizer:
            props |= {"authorizer.class.name":
                      "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                      "super.users": f"User:{self.scram_user};User:ANONYMOUS",
                      "allow.everyone.if.no.acl.found": "false"}
        return props | self.extra

    def client_kwargs(self) -> dict[str, Any]:
        """Return aiokafka client keyword arguments needed to talk to this broker."""
        if not self.sasl_scram:
            return {}
        return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": self.scram_user, "sasl_plain_password": self.scram_password}


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def new_cluster_id() -> str:
    """A random KRaft cluster id (the rule of Kafka's ``Uuid.randomUuid()``)."""
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    return cluster_id


def _port_free(port: int) -> bool:
    """True if nothing listens on (or holds) 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Java does: allow TIME_WAIT
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class _Started(ABC):
    """One broker or a cluster: started on entering a ``with`` block, stopped on leaving it."""

    @abstractmethod
    def start(self, timeout: float = 60) -> None:
        """Launch what is not running and wait until it answers."""

    @abstractmethod
    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _start_all(nodes: list[LocalBroker], timeout: float) -> None:
    """Launch every node not running, then wait until each answers: all are launched
    before any is waited for, as no node of a cluster is ready before a quorum is up."""
    waiting = [node for node in nodes if not node.is_running()]
    for node in waiting:
        node.launch()
    for node in waiting:
        node.wait(timeout)


class LocalBroker(_Started):
    """A broker process for one data dir; attaches to a running one found via its pid file."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self.props_file = self.data_dir / "server.properties"
        self.log_file, self.pid_file = self.data_dir / "broker.log", self.data_dir / "broker.pid"
        self.start_seconds: float | None = None
        self._launched = 0.0  # time.monotonic() of the last launch
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        if self.pid_file.exists():  # attach to a broker started by another process
            pid = int(self.pid_file.read_text().split()[0])
            self.pid = pid if self._alive(pid) else None

    @property
    def bootstrap(self) -> str:
        """The client bootstrap address, ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.config.port}"

    def _alive(self, pid: int) -> bool:
        """True if ``pid`` is a live (non-zombie) ``kafka.Kafka`` process for this data dir."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        ours = b"kafka.Kafka" in cmdline and str(self.props_file).encode() in cmdline
        return ours and state != "Z"

    def is_running(self) -> bool:
        """True while the broker process exists."""
        if self._proc is not None and self._proc.poll() is not None:
            return False
        return self.pid is not None and self._alive(self.pid)

    def _java(self, lib: Path, *args: str) -> list[str]:
        java = Path(os.environ["JAVA_HOME"], "bin", "java") if "JAVA_HOME" in os.environ else "java"
        log4j = f"-Dlog4j2.configurationFile={TOOLS_DIR / 'log4j2.properties'}"
        return [str(java), f"-Xmx{self.config.heap}", log4j, "-cp", f"{lib}/*", *args]

    def _format(self, lib: Path) -> None:
        """Format the KRaft log dir (once); with SASL also create the SCRAM user."""
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return
        cluster_id = self.config.cluster_id or new_cluster_id()
        # one node alone: a dynamic quorum of itself; several: the static voters in the file
        quorum = [] if self.config.voters else ["--standalone"]
        cmd = self._java(lib, "kafka.tools.StorageTool", "format", *quorum,
                         "-t", cluster_id, "-c", str(self.props_file))
        if self.config.sasl_scram:
            cfg = self.config
            users = {cfg.scram_user: cfg.scram_password, **cfg.scram_users}
            for name, password in users.items():
                cmd += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        res = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"kafka storage format failed:\n{res.stdout}{res.stderr}")

    def start(self, timeout: float = 60) -> None:
        """Format if needed, launch the broker, and wait until it answers metadata requests."""
        _start_all([self], timeout)

    def launch(self) -> None:
        """Format if needed and start the process, without waiting for it to be ready (the
        nodes of a cluster are all launched first: none is ready before a quorum is up)."""
        self._check_ports()
        lib = ensure_jars(self.config.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.props_file.write_text(
            "".join(f"{k}={v}\n" for k, v in self.config.properties().items()))
        self._format(lib)
        self._spawn(lib)

    def _check_ports(self) -> None:
        """Refuse to launch onto a port something else holds (the broker would die later,
        with the cause buried in its log)."""
        ports = (self.config.port, self.config.controller_port, self.config.ssl_port)
        for port in (p for p in ports if p):
            if not _port_free(port):
                raise RuntimeError(f"port {port} is already in use on 127.0.0.1")

    def _spawn(self, lib: Path) -> None:
        """Start ``kafka.Kafka`` in its own session; record its pid and ports for the CLI."""
        self._launched = time.monotonic()
        with open(self.log_file, "ab") as out:
            self._proc = subprocess.Popen(
                self._java(lib, "kafka.Kafka", str(self.props_file)), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self._proc.pid
        self.pid_file.write_text(f"{self.pid}\n")
        state = {"port": self.config.port, "controller_port": self.config.controller_port}
        (self.data_dir / "devbroker.json").write_text(json.dumps(state))

    def wait(self, timeout: float = 60) -> None:
        """Wait until the launched broker answers metadata requests; kill it on timeout."""
        t0 = self._launched
        while time.monotonic() - t0 < timeout:
            if self._proc is None or self._proc.poll() is not None:
                self._forget()
                raise RuntimeError(f"broker exited early, log:\n{_tail(self.log_file)}")
            with socket.socket() as s:  # cheap check first: aiokafka logs refused connects
                port_open = s.connect_ex(("127.0.0.1", self.config.port)) == 0
            try:
                if port_open:
                    _run(wait_ready(self.bootstrap, 2.0, **self.config.client_kwargs()))
                    self.start_seconds = time.monotonic() - t0
                    return
            except TimeoutError:
                pass
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"broker not ready in {timeout}s, log:\n{_tail(self.log_file)}")

    def _signal(self, sig: signal.Signals, timeout: float) -> bool:
        """Send ``sig`` to the broker's process group; True if it exited within ``timeout``."""
        if self.pid is None or not self.is_running():
            return True
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                return True
            time.sleep(0.05)
        return False

    def _forget(self) -> None:
        if self._proc is not None:
            self._proc.wait()
        self._proc, self.pid = None, None
        self.pid_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 30) -> None:
        """Stop gracefully with SIGTERM; SIGKILL if it has not exited within ``timeout``."""
        if not self._signal(signal.SIGTERM, timeout):
            self._signal(signal.SIGKILL, 10)
        self._forget()

    def kill(self) -> None:
        """Kill the broker with SIGKILL (simulates a crash)."""
        self._signal(signal.SIGKILL, 10)
        self._forget()

    def restart(self, timeout: float = 60) -> None:
        """Stop, then start again with the same data dir."""
        self.stop()
        self.start(timeout)

    def rss_bytes(self) -> int:
        """Resident set size of the broker process in bytes (0 if not running)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text() if self.pid else ""
        except OSError:
            return 0
        rss = [ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")]
        return int(rss[0]) * 1024 if rss else 0


class LocalCluster(_Started):
    """Several local brokers forming one KRaft cluster on loopback.

    Every node is a broker and a controller voter (a static quorum of all of them), and
    all are formatted with one cluster id. Kafka's internal topics get 3 replicas and 2
    in sync (``BrokerConfig.properties``), so any one node may die; the application's
    topics get what their creator asks for. A node is stopped, killed and restarted on
    its own through ``nodes``.
    """

    def __init__(self, data_dir: Path, ports: list[tuple[int, int]], heap: str = "384m",
                 cache_dir: Path = Path(".cache"), extra: dict[str, str] | None = None) -> None:
        """``ports``: (client port, controller port) of each node, node ids 1, 2, ..."""
        voters = {i: controller for i, (_, controller) in enumerate(ports, 1)}
        cluster_id = new_cluster_id()
        self.nodes = [LocalBroker(BrokerConfig(
            data_dir / f"node-{i}", port=port, controller_port=controller, heap=heap,
            extra=dict(extra or {}), cache_dir=cache_dir, node_id=i, voters=voters,
            cluster_id=cluster_id)) for i, (port, controller) in enumerate(ports, 1)]

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma separated."""
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self, timeout: float = 90) -> None:
        """Launch every node not running, then wait until each answers."""
        _start_all(self.nodes, timeout)

    def stop(self, timeout: float = 30) -> None:
        """Stop every node: SIGTERM to all at once (nodes stopped one after another would
        leave the last ones waiting for a controller quorum that is gone), SIGKILL after
        ``timeout``."""
        for node in self.nodes:
            node._signal(signal.SIGTERM, 0)  # sent, not waited for
        for node in self.nodes:
            node.stop(timeout)

    def pids(self) -> list[int]:
        """Process ids of the running nodes."""
        return [node.pid for node in self.nodes if node.pid is not None and node.is_running()]

    def rss_bytes(self) -> int:
        """Resident set size of all running nodes together, in bytes."""
        return sum(node.rss_bytes() for node in self.nodes)


async def wait_ready(bootstrap: str, timeout: float, **client_kwargs: Any) -> None:
    """Wait until the broker at ``bootstrap`` answers a metadata request listing a broker."""
    deadline = time.monotonic() + timeout
    client_kwargs.setdefault("request_timeout_ms", 5000)
    last: BaseException | None = None
    while (left := deadline - time.monotonic()) > 0:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs)
        try:
            await asyncio.wait_for(admin.start(), left)
            if (await asyncio.wait_for(admin.describe_cluster(), left))["brokers"]:
                return
        except (KafkaError, OSError, TimeoutError) as exc:  # not up yet / auth failure
            last = exc
        finally:
            await admin.close()
        await asyncio.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
    raise TimeoutError(f"Kafka at {bootstrap} not ready after {timeout}s (last: {last!r})")


def new_topic(name: str, partitions: int, replication_factor: int,
              configs: dict[str, str]) -> NewTopic:
    """A topic to create; ``replication_factor`` -1 takes the cluster's
    ``default.replication.factor`` (KIP-464).

    aiokafka's ``NewTopic`` refuses -1 without a replica assignment, but the request
    carries it (CreateTopics v3 here; Kafka 4.1's controller applies its default, checked).
    """
    topic = NewTopic(name, partitions, max(replication_factor, 1), topic_configs=configs)
    topic.replication_factor = replication_factor
    return topic


async def create_topics(bootstrap: str, specs: list[tuple[str, int, dict[str, str]]], *,
                        replication_factor: int = -1, **client_kwargs: Any) -> None:
    """Create ``(name, partitions, configs)`` topics with ``replication_factor`` replicas
    (-1: the cluster's default, 1 on a single local broker); existing ones are kept."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs)
    try:
        await admin.start()
        resp = await admin.create_topics(
            [new_topic(n, p, replication_factor, c) for n, p, c in specs])
        for topic, code, *rest in resp.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):
                raise for_code(code)(f"create topic {topic}: {rest[0] if rest else ''}")
        for _ in range(100):  # wait until every partition has a leader
            meta = await admin.describe_topics([n for n, _, _ in specs])
            if all(t["error_code"] == 0 and t["partitions"] and
                   all(p["leader"] >= 0 for p in t["partitions"]) for t in meta):
                return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``start|stop|status|logs``."""
    ap = argparse.ArgumentParser(prog="python -m stream.dev.broker", description=__doc__)
    ap.add_argument("command", choices=["start", "stop", "status", "logs"])
    ap.add_argument("--data-dir", type=Path, default=Path(".cache/broker"))
    ap.add_argument("--port", type=int, help="default: last used for DIR, else 19092")
    ap.add_argument("--controller-port", type=int, help="default: port + 1")
    ap.add_argument("--lines", type=int, default=50, help="lines shown by 'logs'")
    a = ap.parse_args(argv)
    state_file = a.data_dir / "devbroker.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    port = a.port or state.get("port", 19092)
    cport = a.controller_port or (state.get("controller_port") if a.port is None else None)
    cfg = BrokerConfig(a.data_dir, port, cport or port + 1, cache_dir=Path(".cache"))
    broker = LocalBroker(cfg)
    if a.command == "logs":
        print(_tail(broker.log_file, a.lines))
    elif a.command == "stop":
        was_running = broker.is_running()
        broker.stop()
        print("stopped" if was_running else "not running")
    elif broker.is_running():
        print(f"{'already ' if a.command == 'start' else ''}running at {broker.bootstrap} "
              f"pid={broker.pid} rss={broker.rss_bytes() / 2**20:.0f}MiB")
    elif a.command == "status":
        print("not running")
        return 1
    else:
        try:
            broker.start()
        except (RuntimeError, TimeoutError) as exc:
            print(f"failed to start: {exc}", file=sys.stderr)
            return 1
        print(f"started at {broker.bootstrap} pid={broker.pid} in {broker.start_seconds:.1f}s "
              f"rss={broker.rss_bytes() / 2**20:.0f}MiB log={broker.log_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
