"""Tagged SimPy events: what lets a checkpoint rebuild the processes of a run.

SimPy processes are Python generators, which cannot be saved. So every
process and timer a component puts on the clock carries a *tag* (a tuple of
the component's name and its own key, e.g. ``("dispatch", "unit", 3)``) set
with :func:`tagged`. A checkpoint stores, for every event still in the queue,
its time, priority, SimPy sequence number and the tag of the process waiting
on it (:func:`pending`); on restore, each is put back with :class:`ExactEvent`
at exactly the same place in the queue, and the owning component builds the
process again from its saved state (``Component.resume``), its first wait
being that event. Times and tie order are therefore exactly those of the
uninterrupted run.
"""

from __future__ import annotations

from heapq import heappush
from typing import Any, TypeVar

import simpy

from emtwin.errors import CheckpointError

__all__ = ["tagged", "tag_of", "pending", "ExactEvent", "CheckpointError"]

E = TypeVar("E", bound=simpy.Event)

#: Attribute name of the tag on SimPy events.
_TAG = "emtwin_tag"


def tagged(event: E, *key: Any) -> E:
    """Give *event* (a process or timer) the tag *key*; returns *event*."""
    setattr(event, _TAG, tuple(key))
    return event


def tag_of(event: simpy.Event) -> tuple | None:
    """The tag of *event*, or of the process waiting on it; None if neither has one."""
    tag = getattr(event, _TAG, None)
    if tag is not None:
        return tag
    for cb in event.callbacks or ():
        owner = getattr(cb, "__self__", None)
        if isinstance(owner, simpy.Process):
            tag = getattr(owner, _TAG, None)
            if tag is not None:
                return tag
    return None


def pending(env: simpy.Environment) -> list[tuple[float, int, int, tuple]]:
    """(time s, priority, sequence number, tag) of every event in *env*'s queue.

    Raises
    ------
    CheckpointError
        If an event has no tag (nothing would know how to rebuild it).
    """
    out = []
    for time_s, priority, eid, event in sorted(env._queue, key=lambda e: e[2]):
        tag = tag_of(event)
        if tag is None and not event.callbacks:
            continue  # nothing waits on it (the stop event of an earlier ``run(until=...)``)
        if tag is None:
            raise CheckpointError(
                f"an event at {time_s:g} s ({type(event).__name__}) has no tag: the run cannot "
                "be checkpointed (a component put an untagged process on the clock)"
            )
        out.append((float(time_s), int(priority), int(eid), tag))
    return out


class ExactEvent(simpy.Event):
    """A triggered event put into *env*'s queue at exactly (time, priority, sequence)."""

    def __init__(self, env: simpy.Environment, time_s: float, priority: int, eid: int) -> None:
        super().__init__(env)
        self._ok = True
        self._value = None
        heappush(env._queue, (time_s, priority, eid, self))
