from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from stream.contract.taxonomy import Taxonomy, load_taxonomy
from stream.settings import Settings
from stream.state.facts import FactContext, fact_context

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="session")
def ctx() -> FactContext:
    return fact_context(Settings())
