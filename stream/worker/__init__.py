"""The Faust worker: the app and its agents, and what keeps them fast and exact.

``app`` (the Faust application, its tables and web views), ``agents`` (one per source
topic), ``processor`` (an agent's logic, free of Faust), ``batches`` (fetched batches
straight to the agents), ``changelog`` (table writes and progress markers),
``localstate`` and ``checkpoint`` (restarts from local disk), ``recovery`` (the end of a
table's recovery), ``metrics`` (every Prometheus metric), ``collector`` (the garbage
collector's policy), and ``looplag`` and ``stallwatch`` (how late the event loop runs, and
where it was held when it stalled).
"""
