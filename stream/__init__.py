"""Live performance figures for a children's services front door (C-SPA).

Events from upstream case and telephony systems flow through Kafka into Faust
workers, which keep the figures of the monthly committee report and expose
them to Prometheus.

The package is layered; a module imports only from its own layer and the layers
listed before it (``tests/unit/test_architecture.py`` holds every module to it):

1. ``settings``: the one reader of the environment.
2. ``dev``: development tooling, the local Kafka broker (imports nothing of ours).
3. ``contract``: the event contract: models, taxonomy, topics, JSON Schemas, decoder.
4. ``state``: case records and what is derived from them: facts, figure cells, open
   work, calls waiting, progress markers, working days, timescale rules, the clock.
5. ``worker``: the Faust app, its agents, batches, changelog writes, local store and
   checkpoints, recovery, and the Prometheus metrics.
6. ``report``: the committee report: figures from the workers' cells, rendering, CLI.
7. ``upstream``: the simulator, the importer and the producer.
8. ``cli`` and ``__main__``: ``python -m stream`` and the ``cspa`` entry point.
"""

#: The layers in order (module or package names under ``stream``).
LAYERS = ("settings", "dev", "contract", "state", "worker", "report", "upstream",
          "cli", "__main__")

__version__ = "0.1.0"
