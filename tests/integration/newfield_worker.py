"""A worker of a later release that knows one more optional field: ``referrer_role``.

Stands for a worker upgraded after an additive change (docs/contract.md, "Change
policy") without editing the shipped contract: the contacts family is rebuilt with a
``contact.received`` that also allows the field, before the worker builds its decoder.
Run as ``python -m tests.integration.newfield_worker`` with the usual ``CSPA_*``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Union

from pydantic import Field

from stream.contract import events as ev

NEW_FIELD = "referrer_role"


class ContactReceivedWithRole(ev.ContactReceived):
    """contact.received with the new optional field."""

    referrer_role: str | None = Field(None, max_length=40)


def learn_the_field() -> None:
    """Replace the contacts family (the decoder reads ``FAMILIES`` when it is built)."""
    ev.FAMILIES["contacts"] = Annotated[
        Union[ContactReceivedWithRole, ev.ContactDecided, ev.EmailResolved,  # noqa: UP007
              ev.EarlyHelpAllocated, ev.ContactProgressed],
        Field(discriminator="event_type")]


if __name__ == "__main__":
    learn_the_field()
    from stream.cli import main

    sys.exit(main(["worker"]))
