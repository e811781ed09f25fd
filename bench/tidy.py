"""Every throughput run starts from the broker and disk the first one had.

A run leaves topics on the broker (a worker's changelogs and repartition topic, Quix's
changelogs: 20 to 30 partitions each) and files in its work directory (the worker's
checkpoints, Quix's RocksDB). Kept, they made the runs unequal: in three probes of the
bench's round order (2026-12-07, BENCHMARKS.md "The peer's slow later runs") the checked
Quix peer's third run was 13-29 % slower than its first two (in the probe that measured
it, with three times their system CPU time), while back-to-back peer runs with nothing
between them were not.
With each run's topics and directories removed after it, no run of any side was slower
in later rounds. The mechanism is not known; the inequality is, so it is removed.

What is kept: the source topics and whatever else existed when ``Tidy`` was made, Kafka's
internal topics, and each run's logs and result files (only its directories go).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _delete(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


def topics(bootstrap: str) -> set[str]:
    """The broker's topic names now."""
    return asyncio.run(_topics(bootstrap))


class Tidy:
    """Removes what a run left: topics made since this was created, and the run's
    directories (``__call__`` after each run, before the next one's quiet wait)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.keep = topics(bootstrap)

    def __call__(self, workdir: Path) -> dict[str, Any]:
        """Delete the run's topics and the directories under ``workdir``; what went."""
        made = sorted(t for t in topics(self.bootstrap) - self.keep if not t.startswith("__"))
        if made:
            asyncio.run(_delete(self.bootstrap, made))
        removed = 0
        for path in sorted(workdir.iterdir()) if workdir.is_dir() else []:
            if path.is_dir():
                removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
        return {"topics_deleted": len(made), "bytes_removed": removed}
