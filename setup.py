"""The one compiled part: Kafka's murmur2 for the worker's partition check.

Everything else is declared in pyproject.toml. The extension is optional: without a
C compiler (or Python's headers) ``make install`` still installs the package, and
``stream.contract.partitioner`` falls back to its pure-Python murmur2 (about five
times the cost, see BENCHMARKS.md step 29).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("stream.contract._murmur2", ["stream/contract/_murmur2.c"],
                             optional=True)])
