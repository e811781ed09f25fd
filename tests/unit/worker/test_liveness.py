"""/live: answered from its own thread; fails only while the event loop has stalled.

A real asyncio loop runs in a thread of the test; it is blocked (a callback that
sleeps, as a long refold or checkpoint would) for longer than the limit, and
/live must answer 503 meanwhile, then 200 again once the loop runs.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from stream.settings import Settings
from stream.worker.liveness import LivenessServer

LIMIT = 1.0  # seconds of silence /live tolerates in these tests


def probe(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def until(check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def live(loop: asyncio.AbstractEventLoop) -> Iterator[tuple[LivenessServer, str]]:
    server = LivenessServer("127.0.0.1", 0, LIMIT).start(loop)
    yield server, f"http://127.0.0.1:{server.port}/live"
    server.stop()


def test_live_fails_while_the_loop_is_blocked_then_recovers(
        loop: asyncio.AbstractEventLoop, live: tuple[LivenessServer, str]) -> None:
    server, url = live
    until(lambda: probe(url)[0] == 200)
    blocked = threading.Event()
    release = threading.Event()

    def stall() -> None:  # the loop runs nothing else until released
        blocked.set()
        release.wait(30)

    loop.call_soon_threadsafe(stall)
    assert blocked.wait(5)
    try:
        until(lambda: probe(url)[0] == 503)  # within about LIMIT + one beat
        status, body = probe(url)
        assert status == 503 and body["live"] is False
        assert isinstance(body["loop_silent_seconds"], float)
        assert body["loop_silent_seconds"] > LIMIT and body["limit_seconds"] == LIMIT
    finally:
        release.set()
    until(lambda: probe(url)[0] == 200)
    assert server.heartbeat.silent_for() < LIMIT


def test_a_short_stall_under_the_limit_is_not_a_failure(
        loop: asyncio.AbstractEventLoop, live: tuple[LivenessServer, str]) -> None:
    _, url = live
    until(lambda: probe(url)[0] == 200)
    done = threading.Event()
    loop.call_soon_threadsafe(lambda: (time.sleep(LIMIT / 4), done.set()))
    seen = []
    while not done.is_set():
        seen.append(probe(url)[0])
    assert set(seen) <= {200}


def test_a_worker_not_ready_is_still_live(loop: asyncio.AbstractEventLoop,
                                          live: tuple[LivenessServer, str]) -> None:
    """Readiness plays no part: a worker mid-rebalance (not ready) answers /live 200."""
    from stream.worker.app import create_app

    worker = create_app(Settings(broker="127.0.0.1:39092", web_port=16069))
    worker.app.rebalancing = True
    assert not worker.ready()
    _, url = live
    until(lambda: probe(url)[0] == 200)


def test_only_live_is_served(live: tuple[LivenessServer, str]) -> None:
    _, url = live
    assert probe(url.replace("/live", "/metrics"))[0] == 404
    assert probe(url + "?verbose=1")[0] in (200, 503)


def test_default_limit_exceeds_the_longest_recorded_stall() -> None:
    # BENCHMARKS.md: a national year's cold refold of the contact records runs on the
    # loop for 91.5 s (111.9 s before step 20); a liveness probe must not kill it.
    assert Settings().liveness_seconds > 112
