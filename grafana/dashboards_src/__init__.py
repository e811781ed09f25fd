"""Grafana dashboards as code (grafana-foundation-sdk).

Regenerate the JSON in grafana/dashboards with ``python -m grafana.dashboards_src.build``.
"""
