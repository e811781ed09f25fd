"""Live performance figures for a children's services front door (C-SPA).

Events from upstream case and telephony systems flow through Kafka into Faust
workers, which keep the figures of the monthly committee report and expose
them to Prometheus.
"""

__version__ = "0.1.0"
