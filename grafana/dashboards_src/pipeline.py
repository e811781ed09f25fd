"""*Pipeline health*: is every event arriving, accepted, processed promptly and exported?"""

from __future__ import annotations

from grafana.dashboards_src import common as c

RATE = "[$__rate_interval]"
WORKER = 'job="cspa-worker"'


def _quantile(q: float, metric: str, by: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{RATE})))"


def flow_section() -> list[object]:
    return [
        c.row("Events"),
        c.timeseries("Events consumed per topic", "Kafka messages consumed per second, by "
                     "topic: rate(cspa_events_consumed_total).",
                     c.q(f"sum by (topic) (rate(cspa_events_consumed_total{RATE}))", "{{topic}}",
                         instant=False), unit="cps", w=8),
        c.timeseries("Events applied by type", "Valid events that changed a case record, per "
                     "second, by event type: rate(cspa_events_applied_total).",
                     c.q(f"sum by (event_type) (rate(cspa_events_applied_total{RATE}))",
                         "{{event_type}}", instant=False), unit="cps", w=8),
        c.timeseries("Duplicates per topic", "Valid events already applied (re-deliveries, "
                     "replays after a restart), per second: rate(cspa_events_duplicate_total). "
                     "They change nothing.",
                     c.q(f"sum by (topic) (rate(cspa_events_duplicate_total{RATE}))", "{{topic}}",
                         instant=False), unit="cps", w=8),
        c.timeseries("Rejected per topic", "Messages sent to the dead-letter topic per second, "
                     "by source topic: rate(cspa_events_rejected_total). Any is red.",
                     c.q(f"sum by (topic) (rate(cspa_events_rejected_total{RATE}))", "{{topic}}",
                         instant=False), unit="cps", steps=[(None, "green"), (1e-9, "red")],
                     w=12),
        c.bar_gauge("Rejections by reason (time range)", "Dead-lettered messages over the "
                    "dashboard's time range, by reason: increase(cspa_events_rejected_total"
                    "[$__range]). Reasons are listed in docs/contract.md.",
                    c.q("sum by (reason) (increase(cspa_events_rejected_total[$__range]))",
                        "{{reason}}"), steps=c.ANY_IS_BAD, w=12, h=10),
    ]


def latency_section() -> list[object]:
    return [
        c.row("Latency, lag and freshness"),
        c.timeseries("Event latency p50 / p99", "Kafka record timestamp (= occurred_at) to "
                     "figures updated (KIP-613 end-to-end latency), per topic: "
                     "histogram_quantile over cspa_event_latency_seconds. Backfilled events "
                     "are old by design and raise it.",
                     c.q(_quantile(0.5, "cspa_event_latency_seconds", "topic"), "p50 {{topic}}",
                         instant=False),
                     c.q(_quantile(0.99, "cspa_event_latency_seconds", "topic"), "p99 {{topic}}",
                         ref="B", instant=False), unit=c.SECONDS, w=12),
        c.timeseries("Consumer lag", "Messages behind the high-water mark on the partitions "
                     "the workers own, per topic: sum by (topic) (cspa_consumer_lag).",
                     c.q("sum by (topic) (cspa_consumer_lag)", "{{topic}}", instant=False),
                     steps=[(None, "green"), (1000, "orange")], threshold_line=True, w=12),
        c.bar_gauge("Time since last event", "Now minus the greatest event time (occurred_at) "
                    "seen per topic: time() - max by (topic) (cspa_last_event_timestamp_seconds). "
                    "Quiet at night and weekends is normal.",
                    c.q("time() - max by (topic) (cspa_last_event_timestamp_seconds)",
                        "{{topic}}"), unit=c.SECONDS,
                    steps=[(None, "green"), (3600, "orange"), (86400, "red")], w=12, h=6),
        c.bar_gauge("Time since last message processed", "Now minus the wall-clock time the "
                    "last message of each topic was processed: time() - max by (topic) "
                    "(cspa_last_processed_timestamp_seconds).",
                    c.q("time() - max by (topic) (cspa_last_processed_timestamp_seconds)",
                        "{{topic}}"), unit=c.SECONDS,
                    steps=[(None, "green"), (3600, "orange"), (86400, "red")], w=12, h=6),
        c.timeseries("Event loop lag p50 / p99", "How late each worker's event loop wakes "
                     "a 50 ms timer (cspa_event_loop_lag_seconds): while a batch, a scrape or "
                     "a checkpoint holds the loop, nothing else runs on it. Target: p99 under "
                     "50 ms; WorkerLoopStalled fires on repeated stalls over 1 s.",
                     c.q(_quantile(0.5, "cspa_event_loop_lag_seconds", "instance"),
                         "p50 {{instance}}", instant=False),
                     c.q(_quantile(0.99, "cspa_event_loop_lag_seconds", "instance"),
                         "p99 {{instance}}", ref="B", instant=False), unit=c.SECONDS,
                     steps=[(None, "green"), (0.05, "orange"), (1, "red")],
                     threshold_line=True, w=24),
    ]


def workers_section() -> list[object]:
    return [
        c.row("Workers"),
        c.stat("Targets up", "Scrape targets answering (up == 1) of the cspa-worker (/metrics) "
               "and cspa-faust (/metrics/faust) jobs, out of all configured.",
               c.q('sum(up{job=~"cspa-worker|cspa-faust"})'),
               c.q('count(up{job=~"cspa-worker|cspa-faust"})', ref="B"), w=4),
        c.bar_gauge("Owned partitions per topic", "Partitions each topic's workers own, summed "
                    "over workers: sum by (topic) (cspa_owned_partitions). It equals the "
                    "topic's partition count when every partition is assigned.",
                    c.q("sum by (topic) (cspa_owned_partitions)", "{{topic}}"), w=8, h=6),
        c.timeseries("Owned partitions per worker", "Partitions owned by each worker "
                     "instance (all topics): moves show rebalances.",
                     c.q("sum by (instance) (cspa_owned_partitions)", "{{instance}}",
                         instant=False), w=12, h=6),
        c.timeseries("Worker restarts", "Process restarts in the last hour, per worker: "
                     "changes(process_start_time_seconds[1h]).",
                     c.q(f"changes(process_start_time_seconds{{{WORKER}}}[1h])", "{{instance}}",
                         instant=False), steps=c.ANY_IS_BAD, w=6),
        c.timeseries("Rebalances", "Consumer-group rebalances seen by each worker since it "
                     "started (Faust gauge faust_total_rebalances).",
                     c.q("max by (instance) (faust_total_rebalances)", "{{instance}}",
                         instant=False), w=6),
        c.timeseries("Figure rebuilds", "Figure state rebuilt from the records table after a "
                     "restart or rebalance, per hour: increase(cspa_figure_rebuilds_total[1h]).",
                     c.q("sum by (instance) (increase(cspa_figure_rebuilds_total[1h]))",
                         "{{instance}}", instant=False), w=6),
        c.timeseries("Resident memory", "Resident set size of each worker process "
                     "(process_resident_memory_bytes).",
                     c.q(f"process_resident_memory_bytes{{{WORKER}}}", "{{instance}}",
                         instant=False), unit=c.BYTES, w=6),
        *readiness_panels(),
    ]


#: source partitions no ready worker owns now (the expected set comes from every worker)
UNOWNED = ("max by (topic, partition) (cspa_partition_expected) unless on (topic, partition) "
           "(cspa_partition_owned and on (job, instance) (cspa_worker_ready == 1))")


def readiness_panels() -> list[object]:
    """What CspaWorkersMissing, CspaWorkerNotReady and CspaPartitionUnowned watch."""
    return [
        c.stat("Workers ready", "Workers serving their partitions (cspa_worker_ready == 1), "
               "workers scraped, and the count expected (cspa:workers_expected:count, set in "
               "grafana/prometheus/rules/recording.yml).",
               c.q("sum(cspa_worker_ready) or vector(0)", "ready"),
               c.q("count(cspa_worker_ready) or vector(0)", "scraped", ref="B"),
               c.q("cspa:workers_expected:count", "expected", ref="C"), w=8),
        c.stat("Working time now", "1 in office hours on a working day by the workers' "
               "calendar (bank holidays of England and Wales excluded): max(cspa_working_time). "
               "The office-hours alerts read it.",
               c.q("max(cspa_working_time)"), w=4),
        c.bar_gauge("Partitions without a ready worker", "Source partitions, per topic, that "
                    "no ready worker owns now (cspa_partition_expected unless owned by a "
                    "worker with cspa_worker_ready == 1). 0 is good.",
                    c.q(f"count by (topic) ({UNOWNED}) or on (topic) (0 * count by (topic) "
                        "(max by (topic, partition) (cspa_partition_expected)))", "{{topic}}"),
                    steps=c.ANY_IS_BAD,
                    w=12, h=4),
    ]


def faust_section() -> list[object]:
    return [
        c.row("Faust framework (/metrics/faust)"),
        c.timeseries("Messages received", "Messages Faust's own per-message path received "
                     "per second, per worker: rate(faust_messages_received_total). The "
                     "source topics reach the agents in batches past it; this counts what "
                     "Faust still reads itself (changelogs while recovering).",
                     c.q(f"sum by (instance) (rate(faust_messages_received_total{RATE}))",
                         "{{instance}}", instant=False), unit="cps", w=8),
        c.timeseries("Messages sent per topic", "Messages produced per second by topic (dead "
                     "letters, changelogs): rate(faust_topic_messages_sent_total).",
                     c.q(f"sum by (topic) (rate(faust_topic_messages_sent_total{RATE}))",
                         "{{topic}}", instant=False), unit="cps", w=8),
        c.timeseries("Batch path: refetches and stale batches", "Fetches read again because "
                     "a seek raced them (cspa_refetches_total) and fetched batches dropped "
                     "because an assignment moved their partition first "
                     "(cspa_stale_batches_total), per hour. Faust's per-stream event sensors "
                     "do not see the source topics, which reach the agents in batches.",
                     c.q("sum by (topic) (increase(cspa_refetches_total[1h]))",
                         "refetch {{topic}}", instant=False),
                     c.q("sum by (topic) (increase(cspa_stale_batches_total[1h]))",
                         "stale {{topic}}", ref="B", instant=False),
                     unit="short", w=8),
        # Not faust_events_runtime_ms: the agents take whole fetched batches
        # (stream/worker/batches.py), which never report a runtime to the sensors, so that
        # histogram stays empty and its quantile is NaN.
        c.timeseries("Faust latencies p99", "99th percentile, in milliseconds, of offset "
                     "commit (faust_consumer_commit_latency) and producer send "
                     "(faust_producer_send_latency). Faust's per-event runtime is not "
                     "recorded for batched agents; end-to-end latency is the Event latency "
                     "panel (cspa_event_latency_seconds).",
                     c.q(_quantile(0.99, "faust_consumer_commit_latency", "instance"),
                         "commit {{instance}}", instant=False),
                     c.q(_quantile(0.99, "faust_producer_send_latency", "instance"),
                         "send {{instance}}", ref="B", instant=False),
                     unit=c.MILLISECONDS, w=12),
        c.timeseries("Partition assignments", "Partition assignment operations per hour, by "
                     "result (completed/error): increase(faust_assignment_operations_total[1h]).",
                     c.q("sum by (operation) (increase(faust_assignment_operations_total[1h]))",
                         "{{operation}}", instant=False), w=12),
    ]


def build() -> c.dash_b.Dashboard:
    return c.dashboard(
        "cspa-pipeline", "C-SPA: pipeline health",
        "For on-call IT: events in, rejected and processed per topic, latency and lag, and the "
        "workers' partitions, restarts, rebalances and rebuilds.",
        items=[*flow_section(), *latency_section(), *workers_section(), *faust_section()],
        time_from="now-6h", refresh="1m")
