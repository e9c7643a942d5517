"""Dispatch policies: which free unit goes to a call.

Built in:

- ``closest_idle``: calls are served first come, first served; each goes to
  the free unit (idle at base, or driving back to it) that can serve it with
  the least *current* travel time (closures and flood slow-downs included).
- ``priority_then_closest``: waiting calls are taken most urgent first
  (priority 1 before 2, then by call time); the unit is the closest as above.

A user policy is a Python function named ``"module:function"`` in the
scenario. It is called for each waiting call (first come, first served) that
at least one free unit can serve::

    def policy(call: CallView, units: list[UnitView], now_s: float,
               travel_time_s: Callable[[UnitView, CallView], float]) -> UnitView | None

``units`` are the free units whose type the call needs; ``travel_time_s``
gives a unit's current travel time to the call, s (inf if it cannot reach it).
Return one of ``units``, or None to leave the call waiting. Scenario files
are shared between agencies, so such a policy runs only when the user allows
code (``emtwin run --allow-code``, ``Simulation(..., allow_code=True)``).
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from emtwin.errors import EmtwinError, ScenarioError, SimulationError
from emtwin.sim.dispatch.legs import Call, Unit

__all__ = [
    "CallView",
    "UnitView",
    "Chooser",
    "BUILTIN_POLICIES",
    "closest",
    "load_policy",
    "queue_key",
]

#: ``choose(call, units, now_s, etas) -> Unit | None`` where ``etas(units, call)``
#: gives each unit's travel time to the call, s.
Chooser = Callable[[Call, list[Unit], float, Callable[[list[Unit], Call], np.ndarray]], Unit | None]

#: Built-in policies and the order in which they take waiting calls.
BUILTIN_POLICIES = {"closest_idle": "fifo", "priority_then_closest": "priority"}


@dataclass(frozen=True)
class CallView:
    """What a user policy sees of a call (read only).

    Attributes
    ----------
    id, type, source
        Call id, call type and where it came from (background, stranded, ...).
    time_s
        When it came in, s since the start.
    priority
        1 is the most urgent.
    needs
        Unit types that can serve it.
    node
        Road node of its location; ``x``, ``y`` in m (World CRS).
    people
        People involved.
    """

    id: str
    type: str
    source: str
    time_s: float
    priority: int
    needs: tuple[str, ...]
    node: int
    x: float
    y: float
    people: int


@dataclass(frozen=True)
class UnitView:
    """What a user policy sees of a free unit (read only).

    Attributes
    ----------
    id, type, station
        Unit id, unit type and home station.
    state
        ``idle`` (at its base) or ``returning``.
    node
        Road node it is at, or the next one it reaches when moving.
    calls
        Calls it was sent to so far.
    busy_s
        Time it has spent on calls so far, s.
    """

    id: str
    type: str
    station: str
    state: str
    node: int
    calls: int
    busy_s: float


def queue_key(order: str) -> Callable[[Call], tuple]:
    """Sort key of waiting calls: ``fifo`` (call time) or ``priority`` (priority, time)."""
    if order == "priority":
        return lambda c: (c.priority, c.time_s, c.seq)
    return lambda c: (c.time_s, c.seq)


def closest(
    call: Call,
    units: list[Unit],
    now_s: float,
    etas: Callable[[list[Unit], Call], np.ndarray],
) -> Unit | None:
    """The unit with the least current travel time to *call*; None if none can reach it.

    Ties go to the unit listed first (the order of ``response.resources``).
    """
    t = etas(units, call)
    if t.size == 0:
        return None
    k = int(t.argmin()) if t.size > 1 else 0
    return units[k] if t[k] < math.inf else None


def load_policy(spec: str, *, allow_code: bool, file: str | None = None) -> tuple[Chooser, str]:
    """The chooser and queue order of the policy named *spec* (``response.dispatch``).

    Raises
    ------
    ScenarioError
        When *spec* names Python code and *allow_code* is False, or the module
        cannot be imported, or it has no such function.
    """
    if spec in BUILTIN_POLICIES:
        return closest, BUILTIN_POLICIES[spec]
    mod_name, _, fn_name = spec.partition(":")
    if not allow_code:
        raise ScenarioError(
            f"response.dispatch: '{spec}' names Python code, and scenario files are shared "
            "between agencies, so emtwin runs no code from them unless asked: pass "
            "--allow-code (emtwin run or validate) or allow_code=True (Simulation) to run "
            "it, or use closest_idle or priority_then_closest",
            file=file,
        )
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ScenarioError(
            f"response.dispatch: cannot import module '{mod_name}' of policy '{spec}' ({exc}); "
            "is it on the Python path?",
            file=file,
        ) from None
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        what = "no function" if fn is None else "a non-callable attribute"
        raise ScenarioError(
            f"response.dispatch: module '{mod_name}' has {what} '{fn_name}' (policy '{spec}'); "
            "expected policy(call, units, now_s, travel_time_s) -> unit or None",
            file=file,
        )
    try:
        inspect.signature(fn).bind(None, None, None, None)
    except TypeError as exc:
        raise ScenarioError(
            f"response.dispatch: policy '{spec}' cannot be called as policy(call, units, "
            f"now_s, travel_time_s) ({exc}); it must take those four arguments",
            file=file,
        ) from None
    except ValueError:
        pass  # no signature to inspect (a builtin): the call will tell
    return _user_chooser(fn, spec), "fifo"


def _call_view(c: Call) -> CallView:
    return CallView(c.id, c.type, c.source, c.time_s, c.priority, tuple(c.needs), c.node,
                    c.x, c.y, c.people)  # fmt: skip


def _unit_view(u: Unit, now_s: float) -> UnitView:
    node, _ = u.anchor(now_s)
    return UnitView(u.id, u.type, u.station, u.state, node, u.calls, u.busy_s)


def _user_chooser(fn: Callable, spec: str) -> Chooser:
    """Wrap a user function: views in, a unit out, checked."""

    def choose(
        call: Call,
        units: list[Unit],
        now_s: float,
        etas: Callable[[list[Unit], Call], np.ndarray],
    ) -> Unit | None:
        by_id = {u.id: u for u in units}
        views = [_unit_view(u, now_s) for u in units]

        def travel_time_s(unit: UnitView, call_view: CallView) -> float:
            if unit.id not in by_id or call_view.id != call.id:
                raise SimulationError(
                    f"dispatch policy '{spec}': travel_time_s() works for the offered units "
                    "and the current call only"
                )
            return float(etas([by_id[unit.id]], call)[0])

        try:
            picked = fn(_call_view(call), list(views), float(now_s), travel_time_s)
        except EmtwinError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code failed, not emtwin
            raise SimulationError(
                f"the user dispatch policy '{spec}' (response.dispatch) failed on call "
                f"{call.id} at {now_s:g} s: {type(exc).__name__}: {exc}; this is an error in "
                "that policy's code, not in emtwin"
            ) from exc
        if picked is None:
            return None
        pid = getattr(picked, "id", None)
        if pid not in by_id:
            raise SimulationError(
                f"dispatch policy '{spec}' returned {picked!r} for call {call.id}; expected one "
                "of the units it was given, or None"
            )
        return by_id[pid]

    return choose
