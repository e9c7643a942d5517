"""The dispatch core: a queue of calls, units as SimPy processes, a policy and a travel model.

Independent of roads and floods: where units can go and how long it takes is
the business of a :class:`~emtwin.sim.dispatch.travel.Travel` model (road
network and flood raster in a run; a zone table in analytic studies), so the
queueing behaviour can be checked against queueing theory with zero travel
time (Erlang C, Larson's hypercube) through exactly the code a run uses.

How a call is handled:

1. :meth:`DispatchCore.submit` puts it in the waiting list and starts a
   *dispatch round*: waiting calls are taken in the policy's order (call time,
   or priority then call time) and each is offered the free units that can
   serve it (type in ``call.needs``; idle at base or driving back); the policy
   picks one or none. A call that no free unit can reach waits (FIFO) and is
   offered again whenever a unit frees up or the roads change.
2. The unit drives to the call (a movement, :class:`Leg`), stays ``on_scene_s``,
   brings people ashore (boats), drives to the nearest reachable hospital when
   ``to_hospital`` and hands over (``handover_s``); then it is free: a new
   round may send it straight to the next call, else it drives back to its
   base (and may be sent from the road).
3. A unit whose way ahead closes is re-routed from the next road node; if it
   can no longer reach the call, the call goes back to the waiting list. A unit
   driving a patient to a hospital that loses its function
   (:meth:`DispatchCore.hospital_lost`) is re-routed from the next road node to
   the next working hospital.

Events (``Recorder.event``): ``dispatch``, ``arrival``, ``on_scene_end``,
``hospital_arrival``, ``return`` (a unit back at base), ``reroute`` (with
``reason: hospital_lost`` when its hospital was lost), ``call_lost`` (waited
longer than ``max_wait``), ``units_moved``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from emtwin.sim.dispatch.legs import Call, Leg, Unit
from emtwin.sim.dispatch.policies import Chooser, closest, queue_key
from emtwin.sim.timers import tagged

if TYPE_CHECKING:
    from emtwin.sim.dispatch.travel import Travel
    from emtwin.sim.recorder import Recorder

__all__ = ["DispatchCore"]

#: Interrupt causes that make a moving unit re-plan from its next road node: a road
#: ahead closed (``reroute``), or the hospital it drives to lost its function.
_REPLAN = ("reroute", "hospital_lost")


class DispatchCore:
    """Calls, units, policy and travel on one SimPy clock (1 unit = 1 s).

    Parameters
    ----------
    env
        The SimPy environment.
    units
        The units, in the order ties are broken.
    travel
        Where units can go and how long it takes.
    choose
        The policy: ``choose(call, free_units, now_s, etas) -> Unit | None``.
    order
        Order of the waiting list: ``fifo`` or ``priority``.
    recorder
        Where events go.
    max_wait_s
        A call waiting longer than this is lost, s; None: it waits to the end;
        0: a call that finds no free unit is lost at once (a loss system).
    """

    def __init__(
        self,
        env: simpy.Environment,
        units: list[Unit],
        travel: Travel,
        choose: Chooser,
        *,
        order: str = "fifo",
        recorder: Recorder,
        max_wait_s: float | None = None,
    ) -> None:
        if order not in ("fifo", "priority"):
            raise ValueError(f"order must be fifo or priority, got {order!r}")
        if max_wait_s is not None and not max_wait_s >= 0:
            raise ValueError(f"max_wait_s must be >= 0 or None, got {max_wait_s!r}")
        self.env = env
        self.units = list(units)
        for i, u in enumerate(self.units):
            u.index = i
        self.travel = travel
        self.choose = choose
        self.order = order
        self.recorder = recorder
        self.max_wait_s = max_wait_s
        self.calls: list[Call] = []
        self._key = queue_key(order)
        self._waiting: list[tuple[tuple, Call]] = []
        self._seq = 0

    # ------------------------------------------------------------------ calls

    def submit(self, call: Call) -> None:
        """A call comes in at ``env.now``: queue it and run a dispatch round."""
        call.seq = self._seq
        self._seq += 1
        call.state = "waiting"
        self.calls.append(call)
        self._enqueue(call)
        self.dispatch_round()
        if call.state != "waiting" or self.max_wait_s is None:
            return
        if self.max_wait_s == 0:
            self._lose(call)
        else:
            timer = tagged(self.env.timeout(self.max_wait_s), "dispatch", "expire", call.seq)
            timer.callbacks.append(lambda _ev, c=call: self._expire(c))

    def _enqueue(self, call: Call) -> None:
        bisect.insort(self._waiting, (self._key(call), call), key=lambda kc: kc[0])

    def _dequeue(self, call: Call) -> None:
        for i, (_, c) in enumerate(self._waiting):
            if c is call:
                del self._waiting[i]
                return

    def _expire(self, call: Call) -> None:
        if call.state == "waiting":
            self._lose(call)

    def _lose(self, call: Call) -> None:
        self._dequeue(call)
        call.state = "lost"
        call.reason = self.unserved_reason(call)
        self.recorder.event(self.env.now, "call_lost", call.id, node=call.node,
                            waited_s=float(self.env.now - call.time_s),
                            reason=call.reason)  # fmt: skip

    def unserved_reason(self, call: Call) -> str:
        """Why no unit is at *call* now: ``ended``, ``unreachable`` or ``no_unit``.

        ``ended``: a unit is on its way. Else ``unreachable`` when no unit of a
        type it needs has a route to it now (wherever each unit is), and
        ``no_unit`` when one has (they were busy) or none of those types exists.
        """
        if call.state == "en_route":
            return "ended"
        able = [u for u in self.units if u.type in call.needs]
        if not able:
            return "no_unit"
        reach = np.isfinite(self.etas(able, call)).any()
        return "no_unit" if reach else "unreachable"

    def finish(self) -> None:
        """At the end of the run: give every call no unit reached its reason."""
        for c in self.calls:
            if not math.isfinite(c.arrival_s) and not c.reason:
                c.reason = self.unserved_reason(c)

    @property
    def waiting(self) -> int:
        """Calls waiting for a unit now."""
        return len(self._waiting)

    # ------------------------------------------------------------------ dispatching

    def etas(self, units: list[Unit], call: Call, *, exact: bool = True) -> np.ndarray:
        """Current travel time of each unit to *call*, s (inf where it cannot reach it).

        A moving unit first finishes the stretch it is on (to its next road node).
        With ``exact=False`` only the least time is sure to be right (the
        others may be inf): what the closest-unit policies need, found faster.
        """
        now = float(self.env.now)
        utype = units[0].type if units else ""
        if all(u.leg is None and u.type == utype for u in units):  # the common case
            nodes = np.fromiter((u.node for u in units), dtype=np.int64, count=len(units))
            return self.travel.etas(utype, nodes, call, exact=exact)
        out = np.full(len(units), np.inf)
        by_type: dict[str, list[int]] = {}
        for i, u in enumerate(units):
            by_type.setdefault(u.type, []).append(i)
        for utype, idx in by_type.items():
            anchors = [units[i].anchor(now) for i in idx]
            nodes = np.array([a[0] for a in anchors], dtype=np.int64)
            delay = np.array([a[1] - now for a in anchors])
            moving = np.array([units[i].leg is not None for i in idx])
            out[idx] = self.travel.etas(utype, nodes, call, moving=moving, exact=exact) + delay
        return out

    def _etas_near(self, units: list[Unit], call: Call) -> np.ndarray:
        return self.etas(units, call, exact=False)

    def dispatch_round(self) -> None:
        """Offer waiting calls, in order, to the free units that can serve them."""
        if not self._waiting:
            return
        free = [u for u in self.units if u.free]
        if not free:
            return
        free_types = {u.type for u in free}
        now = float(self.env.now)
        etas = self._etas_near if self.choose is closest else self.etas
        for _, call in list(self._waiting):
            if not free_types.intersection(call.needs):
                continue
            cands = [u for u in free if u.type in call.needs]
            unit = self.choose(call, cands, now, etas)
            if unit is None:
                continue
            self._dequeue(call)
            self._assign(call, unit)
            free.remove(unit)
            if not free:
                return
            free_types = {u.type for u in free}

    def _assign(self, call: Call, unit: Unit) -> None:
        now = float(self.env.now)
        if unit.leg is None:
            node = unit.node
            leg = self.travel.leg_to_call(unit.type, node, call, now)
        else:
            prefix, node, t0 = self._prefix(unit, now)
            leg = self.travel.leg_to_call(unit.type, node, call, t0)
            leg = None if leg is None else prefix.then(leg)
        if leg is None:  # the policy chose a unit that cannot get there: keep waiting
            self._enqueue(call)
            return
        proc = unit.proc
        if proc is not None and proc.is_alive and proc is not self.env.active_process:
            proc.interrupt("dispatch")
        if call.dispatches == 0:
            call.dispatch_s = now
        call.dispatches += 1
        call.state = "en_route"
        call.unit = unit.id
        unit.state = "en_route"
        unit.call = call
        unit.calls += 1
        unit.busy_since = now
        unit.leg = leg
        self.recorder.event(now, "dispatch", call.id, node=node, unit=unit.id,
                            unit_type=unit.type, eta_s=round(leg.end_s - now, 3),
                            wait_s=round(now - call.time_s, 3))  # fmt: skip
        unit.proc = self._unit_process(unit, self._serve(unit, call, leg))

    def _prefix(self, unit: Unit, now: float) -> tuple[Leg, int, float]:
        """The part of the unit's current movement it must finish, its end node and time."""
        if unit.leg is None:
            x, y = self.travel.node_xy(unit.node)
            return Leg.stay(unit.node, x, y, now), unit.node, now
        i = unit.leg.anchor(now)
        head = unit.leg.head(i)
        return head, int(head.node[-1]), max(head.end_s, now)

    # ------------------------------------------------------------------ unit processes

    def _unit_process(self, unit: Unit, gen: Generator[Any, Any, None]) -> simpy.Process:
        return tagged(self.env.process(gen), "dispatch", "unit", unit.index)

    def _serve(self, unit: Unit, call: Call, leg: Leg) -> Generator[Any, Any, None]:
        """Drive to the call, work on scene, bring ashore, to hospital; then free."""
        ok = yield from self._move(unit, leg, ["call", call])
        yield from self._on_scene(unit, call, ok)

    def _on_scene(self, unit: Unit, call: Call, ok: bool) -> Generator[Any, Any, None]:
        if not ok:
            self._abandon(unit, call)
            return
        now = float(self.env.now)
        call.arrival_s = now
        call.state = "on_scene"
        unit.state = "on_scene"
        self.recorder.event(now, "arrival", call.id, node=call.node, unit=unit.id,
                            response_s=round(now - call.time_s, 3))  # fmt: skip
        if call.on_scene_s > 0:
            yield self.env.timeout(call.on_scene_s)
        yield from self._after_scene(unit, call)

    def _after_scene(self, unit: Unit, call: Call) -> Generator[Any, Any, None]:
        call.end_s = float(self.env.now)
        self.recorder.event(call.end_s, "on_scene_end", call.id, node=call.node, unit=unit.id,
                            to_hospital=bool(call.to_hospital))  # fmt: skip
        if unit.leg is not None and unit.leg.end_node < 0:  # a boat on the water: land people
            back = self.travel.leg_to_shore(unit.type, call, float(self.env.now), unit.home)
            unit.state = "to_shore"
            yield from self._move(unit, back, None)
        yield from self._after_shore(unit, call)

    def _after_shore(self, unit: Unit, call: Call) -> Generator[Any, Any, None]:
        if call.to_hospital:
            yield from self._hospital(unit, call)
        self._finish(unit, call)

    def _finish(self, unit: Unit, call: Call) -> None:
        call.state = "done"
        self._release(unit)

    def _hospital(self, unit: Unit, call: Call) -> Generator[Any, Any, None]:
        now = float(self.env.now)
        found = self.travel.leg_to_hospital(unit.type, unit.node, now)
        if found is None:
            self.recorder.event(now, "hospital_unreachable", call.id, node=unit.node,
                                unit=unit.id)  # fmt: skip
            return
        leg, name = found
        call.state = "transport"
        unit.state = "to_hospital"
        dest = ["hospital", name]
        ok = yield from self._move(unit, leg, dest)
        yield from self._at_hospital(unit, call, ok, dest)

    def _at_hospital(self, unit: Unit, call: Call, ok: bool,
                     dest: list) -> Generator[Any, Any, None]:  # fmt: skip
        if not ok:
            self.recorder.event(self.env.now, "hospital_unreachable", call.id,
                                node=unit.node, unit=unit.id)  # fmt: skip
            return
        call.hospital_s = float(self.env.now)
        call.hospital = dest[1]
        self.recorder.event(call.hospital_s, "hospital_arrival", call.id, node=unit.node,
                            unit=unit.id, hospital=call.hospital,
                            since_call_s=round(call.hospital_s - call.time_s, 3))  # fmt: skip
        unit.state = "handover"
        if call.handover_s > 0:
            yield self.env.timeout(call.handover_s)

    # ------------------------------------------------------------------ checkpoints

    def resume(self, tag: tuple, event: simpy.Event) -> None:
        """Rebuild, from saved state, the process or timer *tag* whose next event is *event*.

        ``("unit", index)``: the unit's process continues from the phase its
        ``state`` names (moving, on scene, handover, returning), its first wait
        being *event*; ``("expire", seq)``: a waiting call's limit.
        """
        if tag[0] == "expire":
            call = next(c for c in self.calls if c.seq == tag[1])
            event.callbacks.append(lambda _ev, c=call: self._expire(c))
            return
        unit = self.units[int(tag[1])]
        unit.proc = self._unit_process(unit, self._resume_unit(unit, event))

    def _resume_unit(self, unit: Unit, first: simpy.Event) -> Generator[Any, Any, None]:
        call, st = unit.call, unit.state
        if st == "on_scene":
            yield first
            yield from self._after_scene(unit, call)
        elif st == "handover":
            yield first
            self._finish(unit, call)
        elif st == "en_route":
            ok = yield from self._move(unit, unit.leg, unit.dest, first=first)
            yield from self._on_scene(unit, call, ok)
        elif st == "to_shore":
            yield from self._move(unit, unit.leg, unit.dest, first=first)
            yield from self._after_shore(unit, call)
        elif st == "to_hospital":
            dest = unit.dest
            ok = yield from self._move(unit, unit.leg, dest, first=first)
            yield from self._at_hospital(unit, call, ok, dest)
            self._finish(unit, call)
        else:  # returning, to its base or (cut off) to the next node
            yield from self._return(unit, first=first)

    def _abandon(self, unit: Unit, call: Call) -> None:
        """The unit cannot reach *call* any more: the call waits again, the unit is free."""
        call.state = "waiting"
        call.unit = ""
        self._enqueue(call)
        self._release(unit)

    def _release(self, unit: Unit) -> None:
        """The unit is done with its call: count its busy time; next call, or home."""
        now = float(self.env.now)
        unit.busy_s += now - unit.busy_since
        unit.busy_since = math.nan
        unit.call = None
        unit.state = "returning"
        self.dispatch_round()
        if unit.state == "returning":
            self._go_home(unit)

    def _go_home(self, unit: Unit) -> None:
        if unit.node == unit.home and unit.leg is None:
            unit.state = "idle"
            return
        unit.proc = self._unit_process(unit, self._return(unit))

    def _return(self, unit: Unit, first: simpy.Event | None = None) -> Generator[Any, Any, None]:
        """Drive back to base; a dispatch on the way ends this process.

        *first*: resumed from a checkpoint, on the move it was on, whose next
        event is *first*.
        """
        try:
            if first is not None:
                ok = yield from self._move(unit, unit.leg, unit.dest, first=first)
                if unit.dest is not None and ok and unit.node == unit.home:
                    unit.state = "idle"
                    self.recorder.event(self.env.now, "return", unit.id, node=unit.home,
                                        station=unit.station)  # fmt: skip
                return
            now = float(self.env.now)
            prefix, node, t0 = self._prefix(unit, now)
            leg = self.travel.leg_to_node(unit.type, node, unit.home, t0)
            if leg is None:  # cut off from base: wait where it is, retried on road changes
                unit.leg = prefix if len(prefix) > 1 else None
                if unit.leg is not None:
                    yield from self._move(unit, unit.leg, None)
                return
            ok = yield from self._move(unit, prefix.then(leg), ["home"])
            if ok and unit.node == unit.home:
                unit.state = "idle"
                self.recorder.event(self.env.now, "return", unit.id, node=unit.home,
                                    station=unit.station)  # fmt: skip
        except simpy.Interrupt as irq:
            if irq.cause != "dispatch":  # pragma: no cover - no other cause reaches here
                raise

    def _move(
        self, unit: Unit, leg: Leg, dest: list | None, first: simpy.Event | None = None
    ) -> Generator[Any, Any, bool]:
        """Follow *leg*; re-plan from the next road node when interrupted with ``reroute``.

        Returns False when the destination can no longer be reached (the unit
        stops at the last road node it got to). *first*: the pending end of the
        leg, when resumed from a checkpoint.
        """
        unit.leg = leg
        unit.dest = dest
        reached = True
        while True:
            try:
                if first is not None:
                    ev, first = first, None
                    yield ev
                    break
                wait = leg.end_s - float(self.env.now)
                if wait > 0:
                    yield self.env.timeout(wait)
                break
            except simpy.Interrupt as irq:
                if irq.cause not in _REPLAN:
                    raise
                if dest is None:  # nothing to re-plan (a landing, or already given up)
                    continue
                now = float(self.env.now)
                head = leg.head(leg.anchor(now))
                new = self._plan(unit, dest, int(head.node[-1]), max(head.end_s, now))
                found = new is not None
                why = {} if irq.cause == "reroute" else {"reason": irq.cause}
                self.recorder.event(now, "reroute", unit.id, node=int(head.node[-1]),
                                    found=found, to=dest[0],
                                    eta_s=round(head.then(new).end_s - now, 3) if found
                                    else None, **why)  # fmt: skip
                if found:
                    leg = head.then(new)
                else:  # no way left: stop at the next node
                    leg, dest, reached = head, None, False
                unit.leg = leg
                unit.dest = dest
        self._arrive(unit, leg)
        return reached

    def _arrive(self, unit: Unit, leg: Leg) -> None:
        unit.trips.append(leg)
        if leg.end_node >= 0:
            unit.node = leg.end_node
            unit.leg = None
        else:
            unit.leg = Leg(leg.t[-1:], leg.x[-1:], leg.y[-1:], leg.node[-1:], leg.edge[-1:])

    def _plan(self, unit: Unit, dest: list, node: int, t0: float) -> Leg | None:
        """A new leg from *node* at *t0* to *dest* (``["call", call]``, ``["home"]`` or
        ``["hospital", name]``, whose name is updated to the hospital found)."""
        if dest[0] == "call":
            return self.travel.leg_to_call(unit.type, node, dest[1], t0)
        if dest[0] == "home":
            return self.travel.leg_to_node(unit.type, node, unit.home, t0)
        found = self.travel.leg_to_hospital(unit.type, node, t0)
        if found is None:
            return None
        dest[1] = found[1]
        return found[0]

    # ------------------------------------------------------------------ road changes

    def check_routes(self) -> int:
        """Re-route moving units whose way ahead is closed; retry waiting calls.

        Call after the roads or the water changed. Returns the number of units
        told to re-route.
        """
        now = float(self.env.now)
        n = 0
        for u in self.units:
            alive = u.proc is not None and u.proc.is_alive
            if u.leg is None or not alive:
                if u.state == "returning" and u.leg is None and not alive:
                    self._go_home(u)  # was cut off from its base: try again
                continue
            if u.leg.end_s <= now:
                continue
            target = u.call if u.state == "en_route" else None
            if u.state in ("en_route", "returning", "to_hospital") and self.travel.blocked(
                u.type, u.leg, now, target
            ):
                u.proc.interrupt("reroute")
                n += 1
        self.dispatch_round()
        return n

    def hospital_lost(self, name: str) -> list[str]:
        """Re-route the units driving a patient to hospital *name*, which lost its function.

        Call after the travel model counts *name* as lost. Each unit on its way there
        is re-planned from its next road node (it finishes the road stretch it is on)
        to the working hospital it reaches soonest, with a ``reroute`` event whose
        ``reason`` is ``hospital_lost``; with none left it stops at that node
        (``hospital_unreachable``). Returns the ids of the units re-routed.
        """
        now = float(self.env.now)
        out = []
        for u in self.units:
            if (u.state == "to_hospital" and u.dest is not None and u.dest[0] == "hospital"
                    and u.dest[1] == name and u.leg is not None and u.leg.end_s > now
                    and u.proc is not None and u.proc.is_alive):  # fmt: skip
                u.proc.interrupt("hospital_lost")
                out.append(u.id)
        return out

    def move_units(self, utype: str, count: int, src: str, dst: str, dst_node: int) -> list[str]:
        """Give *count* units of *utype* based at *src* the new base *dst* (node *dst_node*).

        Free units leave at once; busy ones finish their call first. Idle units
        go first, then returning, then busy ones (unit order within each).
        Returns the ids of the units moved.
        """
        rank = {"idle": 0, "returning": 1}
        pool = [u for u in self.units if u.type == utype and u.station == src]
        pool.sort(key=lambda u: (rank.get(u.state, 2), u.index))
        moved = pool[:count]
        for u in moved:
            u.station = dst
            u.home = dst_node
            if u.state == "idle":
                u.state = "returning"
                self._go_home(u)
            elif u.state == "returning" and u.proc is not None and u.proc.is_alive:
                u.proc.interrupt("dispatch")
                u.proc = None
                self._go_home(u)
        return [u.id for u in moved]

    # ------------------------------------------------------------------ read-outs

    def busy_units(self, utype: str | None = None) -> int:
        """Units assigned to a call now (of *utype*, or all)."""
        return sum(1 for u in self.units if not u.free and (utype is None or u.type == utype))

    def busy_time_s(self, unit: Unit, now: float) -> float:
        """Time *unit* has been assigned to calls up to *now*, s."""
        extra = now - unit.busy_since if math.isfinite(unit.busy_since) else 0.0
        return unit.busy_s + extra
