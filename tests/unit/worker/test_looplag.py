"""cspa_event_loop_lag_seconds sees a blocking call on a real event loop."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, generate_latest

from stream.worker.looplag import PERIOD_SECONDS, LoopLag
from stream.worker.metrics import PipelineMetrics

BLOCK = 0.4  # seconds the injected call holds the loop


def samples(registry: CollectorRegistry) -> dict[str, float]:
    return {f"{s.name}{{le={s.labels['le']}}}" if "le" in s.labels else s.name: s.value
            for family in registry.collect() for s in family.samples}


async def _watch(lag: LoopLag, blocking: bool) -> None:
    task = asyncio.create_task(lag.run())
    await asyncio.sleep(5 * PERIOD_SECONDS)  # a few idle ticks first
    if blocking:
        asyncio.get_running_loop().call_soon(time.sleep, BLOCK)  # holds the loop
    await asyncio.sleep(5 * PERIOD_SECONDS)
    task.cancel()


def run(blocking: bool) -> dict[str, float]:
    registry = CollectorRegistry()
    asyncio.run(_watch(LoopLag(PipelineMetrics(registry).loop_lag.observe), blocking))
    return samples(registry)


def test_a_blocking_call_is_seen_as_lag():
    seen = run(blocking=True)
    count = seen["cspa_event_loop_lag_seconds_count"]
    assert count >= 3  # the timer ticked on the loop
    # the tick that waited behind the call is late by about BLOCK (never less than the
    # block minus one period; contention can only make it later)
    assert seen["cspa_event_loop_lag_seconds_bucket{le=0.25}"] < count
    assert seen["cspa_event_loop_lag_seconds_sum"] >= BLOCK - PERIOD_SECONDS


def test_the_worker_serves_it_on_the_pipeline_registry():
    from stream.settings import Settings
    from stream.worker.app import create_app

    worker = create_app(Settings())
    text = generate_latest(worker.pipeline).decode()
    assert "# TYPE cspa_event_loop_lag_seconds histogram" in text
    assert 'cspa_event_loop_lag_seconds_bucket{le="1.0"}' in text  # WorkerLoopStalled's bound
