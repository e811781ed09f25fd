"""The calls-waiting-now family: the queue as it stands, per call queue, on the worker's clock.

Every contact-centre wallboard starts with three numbers: calls in the queue now, how
long the oldest has waited, and the average speed of answer. The call figures elsewhere
count a call only once it is answered or abandoned; this module keeps the calls that are
neither yet.

A call *waits* while its record holds a ``call.queued`` slot and neither a
``call.answered`` nor a ``call.abandoned`` one. That is a pure function of the record,
so, like open work (``stream.state.timeliness``), the waiting set is kept per partition, fed by
``OpenWork`` with every record that changes or is rebuilt, and judged against the clock
only at scrape time: an answer that arrives before its queue event never opens a wait,
and a restart or rebalance rebuilds the set exactly from the records.

A call whose outcome never arrives would otherwise wait for ever and hold the oldest-wait
figure (and its alert) hostage to one lost upstream event. Past ``limit_seconds`` it stops
counting as waiting and is counted apart, in ``cspa_calls_waiting_expired``, so the loss
shows instead of hiding. Labels are queues from the taxonomy only; keys never leave here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from stream.state.record_index import Part, RecordIndex
from stream.state.records import Abandon, Answer, Queueing, Record
from stream.state.timeliness import OpenWork

Waiting = tuple[str, float]  # (queue, queued at, POSIX seconds)
#: live windows the average speed of answer is exported for (``facts.WINDOWS``)
ASA_WINDOWS = ("this_hour", "today")


def waiting_of(record: Record | None) -> Waiting | None:
    """(queue, queued at) if the record is a call still waiting for its outcome."""
    if record is None or record.get("k") != "call":
        return None
    queued = record.get(Queueing.KEY)
    if queued is None or Answer.KEY in record or Abandon.KEY in record:
        return None
    return Queueing.queue(queued), float(Queueing.occurred_at(queued))


@dataclass
class QueueState:
    """One queue at one instant: waiting calls, the oldest wait, calls given up on."""

    waiting: int = 0
    oldest_seconds: float = 0.0
    expired: int = 0


class CallsWaiting(RecordIndex[Waiting]):
    """Calls waiting per partition, derived from the call records (a listener of OpenWork)."""

    KIND = "call"

    def __init__(self, queues: Iterable[str], limit_seconds: float) -> None:
        super().__init__()
        self.queues = tuple(queues)
        self.limit = limit_seconds

    def value_of(self, record: Record | None) -> Waiting | None:
        return waiting_of(record)

    def evaluate(self, now: float, owned: Collection[Part]) -> dict[str, QueueState]:
        """Every queue (taxonomy ones always present) as it stands at ``now``.

        A call queued after ``now`` (an upstream clock ahead of ours) waits 0 s.
        """
        states = {q: QueueState() for q in self.queues}
        for queue, queued_at in self.values_of(owned):
            state = states.setdefault(queue, QueueState())
            wait = max(0.0, now - queued_at)
            if wait > self.limit:
                state.expired += 1
            else:
                state.waiting += 1
                state.oldest_seconds = max(state.oldest_seconds, wait)
        return states


def listen(work: OpenWork, queues: Iterable[str], limit_seconds: float) -> CallsWaiting:
    """A CallsWaiting fed by ``work``'s record updates (rebuilt and checkpointed with it)."""
    waiting = CallsWaiting(queues, limit_seconds)
    work.listeners.append(waiting)
    return waiting
