"""A minimal DevTools-protocol client for Debian's headless Chromium.

The committee report is checked in a real browser, and only the DevTools protocol
gives console errors, element geometry and ``Page.printToPDF`` from one page load.
It needs no new dependency: aiohttp (already a dependency) speaks the websocket.
Chromium listens on 127.0.0.1 only, on a port it picks itself (written to
``DevToolsActivePort`` in its throwaway profile), so parallel runs never collide.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp

from tests.tools import require

STARTUP_SECONDS = 30.0
REPLY_SECONDS = 60.0


class DevToolsError(RuntimeError):
    """Chromium answered a command with an error (the message names the command)."""


class Session:
    """One page's DevTools connection: commands by id, events kept in arrival order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = message.json()
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None:
                future.set_result(data)
            elif "method" in data:
                self.events.append(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one command and return its result; raises on a protocol error."""
        ident = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        reply = await asyncio.wait_for(future, REPLY_SECONDS)
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def load(self, url: str, timeout: float = REPLY_SECONDS) -> None:
        """Navigate and return once ``url`` itself has loaded, fonts included (never an
        earlier page's load event)."""
        await self.send("Page.navigate", url=url)
        ready = (f"location.href === {url!r} && document.readyState === 'complete'"
                 " ? document.fonts.ready.then(() => true) : false")
        deadline = time.monotonic() + timeout
        while not (await self.send("Runtime.evaluate", expression=ready,
                                   awaitPromise=True))["result"].get("value"):
            if time.monotonic() > deadline:
                raise DevToolsError(f"{url} did not load in {timeout:g} s")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self._reader.cancel()
        with suppress(asyncio.CancelledError):
            await self._reader
        await self.ws.close()


def _command(profile: Path) -> list[str]:
    """The Chromium command line: headless, loopback DevTools, no first-run noise."""
    cmd = [require("chromium"), "--headless=new", "--remote-debugging-port=0",
           "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}",
           "--no-first-run", "--no-default-browser-check", "--disable-gpu",
           "--disable-extensions", "--hide-scrollbars", "about:blank"]
    if os.geteuid() == 0:  # Chromium refuses to sandbox as root (containers, CI)
        cmd.insert(2, "--no-sandbox")
    return cmd


async def _port(profile: Path, proc: subprocess.Popen[bytes]) -> int:
    """The DevTools port Chromium picked, read from its profile once it listens."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevToolsError(f"chromium exited with {proc.returncode} before listening")
        if marker.exists() and marker.read_text().count("\n") >= 1:
            return int(marker.read_text().split()[0])
        await asyncio.sleep(0.05)
    raise DevToolsError(f"chromium did not open its DevTools port in {STARTUP_SECONDS:g} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the Chromium this module started (its helpers exit with it)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@asynccontextmanager
async def page_session() -> AsyncIterator[Session]:
    """A fresh headless Chromium (throwaway profile) with one blank page, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as tmp:
        async with _page(Path(tmp)) as session:
            yield session


@asynccontextmanager
async def _page(profile: Path) -> AsyncIterator[Session]:
    proc = subprocess.Popen(_command(profile), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        port = await _port(profile, proc)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as listing:
                targets = await listing.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(url, max_msg_size=0) as ws:
                session = Session(ws)
                try:
                    yield session
                finally:
                    await session.close()
    finally:
        _stop(proc)
