"""Case records and everything derived from them, free of Faust, Kafka and Prometheus.

``records`` (the fold of events into one record per case, slots read by name),
``facts`` (what a record contributes, and how a family declares its figures),
``families`` (every figure family), one module per family (``contacts``, ``emails``,
``calls``, ``map_enquiries``, ``audits``, ``timeliness`` for open work and breaches,
``calls_waiting``), ``aggregates`` (additive cells), ``progress`` (where each partition
resumes), ``working_days``, ``rules`` (timescales) and ``clock``.
"""
