"""Benchmark harness: the worker measured beside a ceiling and a peer, in one run.

``python -m bench [--events N] [--quick] [--output results/bench]`` starts its own
Kafka broker, loads a deterministic national-scale event mix, and measures the
Faust worker's throughput (checked exact against figures computed here
independently), a plain aiokafka consumer and Kafka's own ``ConsumerPerformance``
(the ceiling), a Quix Streams application doing the same aggregation (the peer),
end-to-end latency, scale-out, crash recovery and memory. See ``BENCHMARKS.md``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
