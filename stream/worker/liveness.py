"""``/live``: is the worker's event loop still running? Answered off the loop.

Everything else the worker serves (``/ready``, ``/metrics``...) is answered on the
event loop, so it cannot tell a loop that is stuck from one that is busy: it just
does not answer. ``LivenessServer`` is a small stdlib HTTP server in a daemon
thread of its own. Every ``BEAT_SECONDS`` it posts a callback to the loop that
stamps the monotonic time when the loop runs it; ``/live`` answers 503 only when
the last stamp is older than the limit (``CSPA_LIVENESS_SECONDS``), 200 otherwise.
Readiness plays no part: a rebalance or a recovery keeps ``/live`` at 200.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: how often the loop is asked to stamp the time (seconds); the stamp's precision
BEAT_SECONDS = 0.5


class Heartbeat:
    """The last time (monotonic seconds) the loop ran a beat posted to it."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None  # set by LivenessServer.start
        self.last = time.monotonic()

    def post(self) -> None:
        """Ask the loop to stamp the time (from any thread); a closed loop stamps nothing."""
        if self.loop is None:
            return
        try:
            self.loop.call_soon_threadsafe(self._stamp)
        except RuntimeError:  # the loop is closed: the process is ending
            pass

    def _stamp(self) -> None:
        self.last = time.monotonic()

    def silent_for(self) -> float:
        """Seconds since the loop last ran a beat."""
        return max(0.0, time.monotonic() - self.last)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    heartbeat: Heartbeat
    limit: float

    def service_actions(self) -> None:  # between requests, every poll interval
        self.heartbeat.post()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5  # seconds a client may take to send its request

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/live":
            self._send(404, {"error": "not found: only /live is served here"})
            return
        silent = self.server.heartbeat.silent_for()
        live = silent <= self.server.limit
        self._send(200 if live else 503, {"live": live, "loop_silent_seconds": round(silent, 3),
                                          "limit_seconds": self.server.limit})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a probe every few seconds would flood the worker's log."""


class LivenessServer:
    """``/live`` on ``host:port`` from a daemon thread, judging a loop by its heartbeat.

    The port is bound at construction (``OSError`` if taken), so a worker can fail at
    once, before it connects to Kafka; ``start`` names the loop and starts serving.
    """

    def __init__(self, host: str, port: int, limit_seconds: float) -> None:
        self.heartbeat = Heartbeat()
        self.server = _Server((host, port), _Handler)
        self.server.heartbeat = self.heartbeat
        self.server.limit = limit_seconds
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": BEAT_SECONDS},
                                       name="cspa-liveness", daemon=True)

    @property
    def port(self) -> int:
        """The port bound (the one asked for, or the one given for port 0)."""
        port: int = self.server.server_address[1]
        return port

    def start(self, loop: asyncio.AbstractEventLoop) -> LivenessServer:
        """Serve ``/live`` about ``loop`` (its silence counts from now)."""
        self.heartbeat.loop = loop
        self.heartbeat.last = time.monotonic()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
