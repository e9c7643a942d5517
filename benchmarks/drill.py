"""Drill: does riverside keep up with 60x real time, and how fast does a decision reach the page?

Starts the built-in ``riverside`` drill at ``--speed`` (default 60 simulated seconds per
wall second) behind the real web server (uvicorn), plays at full speed to ``--from``
(default 1h20min, the flood rising), then, while the clock runs paced, POSTs
``--decisions`` decisions (closing and opening ``bridge-east`` in turn, 2 s apart) and
times each from the POST to the websocket message that holds it. Prints those
latencies, how long each decision waited for the step under way, the speed the paced
clock held and the speed of computing alone. The browser's drawing comes on top
(docs/drill.md). Run on a quiet machine: other load on the cores shows up here.

    python benchmarks/drill.py [--speed 60] [--from 1h20min] [--decisions 12]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import tempfile
import threading
import time

import httpx
import uvicorn
from websockets.sync.client import connect

from emtwin.drill.app import create_app
from emtwin.drill.session import DrillSession
from emtwin.scenarios import load_scenario
from emtwin.scenarios._types import parse_duration


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=60.0)
    ap.add_argument("--from", dest="start", default="1h20min")
    ap.add_argument("--decisions", type=int, default=12)
    args = ap.parse_args()
    sc = load_scenario("riverside")
    sc.flood.backend = "cpu"
    s = DrillSession(sc, tempfile.mkdtemp(prefix="emtwin-drill-"), speed=args.speed,
                     after_action=False)  # fmt: skip
    port = _port()
    server = uvicorn.Server(uvicorn.Config(create_app(s, token="c", player_token="p"),
                                           host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    s.start()
    start = float(parse_duration(args.start))
    s.jump(start)
    while s.time_s < start:
        time.sleep(0.1)
    stack = contextlib.ExitStack()
    ws = stack.enter_context(connect(f"ws://127.0.0.1:{port}/ws?token=p", max_size=None))
    seen: list[tuple[float, int]] = []

    def read() -> None:
        while True:
            try:
                m = json.loads(ws.recv())
            except Exception:  # noqa: BLE001 - closed
                return
            seen.append((time.perf_counter(), int(m["state"]["decisions"])))

    threading.Thread(target=read, daemon=True).start()
    time.sleep(2.0)
    push_ms = []
    wall0, sim0 = time.perf_counter(), s.time_s
    with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                      headers={"Authorization": "Bearer p"}) as c:  # fmt: skip
        for i in range(args.decisions):
            n = len(s.decisions.items)
            kind = "close_road" if i % 2 == 0 else "open_road"
            t0 = time.perf_counter()
            c.post("/api/actions", json={kind: "bridge-east"}).raise_for_status()
            while not any(d > n and t >= t0 for t, d in seen):
                time.sleep(0.002)
            push_ms.append(1000 * (min(t for t, d in seen if d > n and t >= t0) - t0))
            time.sleep(2.0)
    held = (s.time_s - sim0) / (time.perf_counter() - wall0)
    stack.close()
    s.stop()
    s.wait(600)
    print(f"decision -> websocket, ms: {[round(x) for x in push_ms]}")
    print(f"  median {statistics.median(push_ms):.0f} ms, max {max(push_ms):.0f} ms, "
          f"{sum(x < 500 for x in push_ms)} of {len(push_ms)} under 500 ms")
    print(f"waited for the step under way, ms: {[round(1000 * x) for x in s.lock_waits]}")
    print(f"paced clock held {held:.1f}x against {args.speed:g}x asked; computing alone "
          f"{s.keep_up:.1f}x")


if __name__ == "__main__":
    main()
