from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from stream.app import fact_context
from stream.figures import FactContext
from stream.settings import Settings
from stream.taxonomy import Taxonomy, load_taxonomy

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="session")
def ctx() -> FactContext:
    return fact_context(Settings())
