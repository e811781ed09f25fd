"""Upstream systems' side: events made, imported and sent.

``simulator`` (calibrated traffic, its volumes in ``profile``), ``importer`` (source
systems' export files), ``producer`` (validated sends) and ``cli`` (their commands).
"""
