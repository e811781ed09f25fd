"""What the report's command tests share: canned workers on a loopback HTTP server, every
partition of the catalogue, a URL nobody answers, and command-line parsing."""

from __future__ import annotations

import argparse
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from stream.contract.topics import folded, load_topics

#: every (topic, partition) the workers fold (event topics and the repartition topic):
#: what workers must cover
ALL_PARTITIONS = [(spec.name, p) for spec in folded(load_topics(app_id="cspa")).values()
                  for p in range(spec.partitions)]


class CannedWorkers:
    """Workers as canned JSON answers, by name (the URL's first path segment): ``cells``
    for ``/NAME/cells``, ``due`` for ``/NAME/due?...``; anything else is a 404.
    ``asked`` holds every path requested, query included."""

    def __init__(self) -> None:
        self.cells: dict[str, dict[str, object]] = {}
        self.due: dict[str, dict[str, object]] = {}
        self.asked: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        workers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                workers.asked.append(self.path)
                name, _, endpoint = urlsplit(self.path).path.strip("/").partition("/")
                found = {"cells": workers.cells, "due": workers.due}.get(endpoint, {})
                self._send(found.get(name))

            def _send(self, body: dict[str, object] | None) -> None:
                data = json.dumps(body).encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def url(self, name: str) -> str:
        """The base URL of worker ``name``, as a ``--workers`` list names it."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"


@pytest.fixture
def workers() -> Iterator[CannedWorkers]:
    w = CannedWorkers()
    w.thread.start()
    yield w
    w.server.shutdown()
    w.server.server_close()


def dead_url() -> str:
    """A loopback URL on a port nobody listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def parse_args(add_arguments: Callable[[argparse.ArgumentParser], None],
               argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by a command's own ``add_arguments``."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)
