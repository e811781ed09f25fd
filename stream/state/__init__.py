"""Case records and everything derived from them, free of Faust and Kafka.

``records`` (the fold of events into one record per case), ``figures`` (the facts a
record contributes), ``aggregates`` (additive figure cells), ``timeliness`` (open work
and breaches), ``queue_now`` (calls waiting), ``progress`` (where each partition
resumes), ``working_days``, ``rules`` (timescales) and ``clock``.
"""
