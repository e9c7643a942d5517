"""The drill's forecast button: ``POST /api/forecast`` forks the live state into an ensemble
(FastAPI's test client), and the live drill goes on meanwhile."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="fastapi (the drill extra) is needed")
pytest.importorskip("httpx", reason="httpx (the test extra) is needed for the test client")

from drill_world import drill_scenario, drill_world  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from test_evacuation import node_xy  # noqa: E402

from emtwin.batch import uncertain as unc  # noqa: E402
from emtwin.drill.app import create_app  # noqa: E402
from emtwin.drill.forecast import ForecastError, member_floods  # noqa: E402
from emtwin.drill.session import DrillSession  # noqa: E402

CTL = {"Authorization": "Bearer control-token"}
PLY = {"Authorization": "Bearer player-token"}
#: Rain scaled by a factor drawn per member (so members differ), and a held parameter.
UNCERTAIN = {"method": "monte_carlo", "parameters": {
    "hazards.0.rain": {"scale": {"uniform": [0.5, 2.0]}},
    "evacuation.on_foot_share": {"uniform": [0.1, 0.3]}}}  # fmt: skip
#: mm/h on the flat, closed grid: the water stands at RAIN x t everywhere (mass balance).
RAIN = 500.0


def depth_m(t: float, at: float, factor: float) -> float:
    """Depth at *t* (s) of a member with rain x *factor* from *at* on, the base rain before."""
    return RAIN / 3.6e6 * (at + factor * (t - at))


@pytest.fixture(scope="module")
def world():
    return drill_world()


def scenario(world, **over):
    gauges = [{"name": "low", "at": list(node_xy(world, 14))},
              {"name": "corner", "at": list(node_xy(world, 0))}]  # fmt: skip
    flood = {"type": "flood", "rain": [[0, RAIN]], "gauges": gauges}
    sc = drill_scenario(world, hazards=[flood], **{"uncertain": UNCERTAIN, **over})
    sc.flood.backend = "cpu"
    return sc


def client(s: DrillSession, workers: int = 0) -> TestClient:
    app = create_app(s, token="control-token", player_token="player-token",
                     forecast_workers=workers)  # fmt: skip
    return TestClient(app)


def _wait(cond, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "it did not get there"
        time.sleep(0.05)


def test_members_take_the_drawn_rain_and_hold_the_rest(world) -> None:
    sc = scenario(world)
    floods, varied, held = member_floods(sc, 5)
    assert varied == ["hazards.0.rain"] and held == ["evacuation.on_foot_share"]
    draws = unc.sample(unc.parameters(sc), seed=sc.seed, runs=5, method="monte_carlo")
    factors = [d["hazards.0.rain"] for d in draws]
    assert len(set(factors)) == 5 and all(0.5 <= f <= 2.0 for f in factors)
    # member i's rain is the scenario's rain times its draw; the scenario is untouched
    assert [f.rain for f in floods] == [[(0.0, RAIN * f)] for f in factors]
    assert sc.flood.rain == [(0.0, RAIN)]
    with pytest.raises(ForecastError, match="no flood forcing"):
        member_floods(scenario(world, uncertain={"parameters": {
            "evacuation.on_foot_share": {"uniform": [0.1, 0.3]}}}), 4)  # fmt: skip


def test_forecast_needs_the_control_token(world, tmp_path: Path) -> None:
    s = DrillSession(scenario(world), tmp_path / "out", world=world, after_action=False)
    c = client(s)
    body = {"members": 2, "horizon": "10min"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "control-token"}):
        assert c.post("/api/forecast", json=body, headers=headers).status_code == 401
    assert c.post("/api/forecast", json=body, headers=PLY).status_code == 403
    assert c.post("/api/forecast", json={"members": 1}, headers=CTL).status_code == 422
    assert c.post("/api/forecast", json={"horizon": "soon"}, headers=CTL).status_code == 422
    assert c.get("/api/forecast/1").status_code == 404
    assert c.app.state.forecasts.jobs == {} and s.decisions.items == []


def test_a_small_forecast_gives_probabilities_and_ordered_quantiles(world, tmp_path) -> None:
    s = DrillSession(scenario(world), tmp_path / "out", world=world, after_action=False)
    c = client(s)
    s.step_to(1200.0)
    r = c.post("/api/forecast", json={"members": 4, "horizon": "15min"}, headers=CTL)
    assert r.status_code == 200, r.text
    job = r.json()
    assert (job["at_s"], job["to_s"], job["members"]) == (1200.0, 2100.0, 4)
    _wait(lambda: c.get(f"/api/forecast/{job['id']}").json()["state"] != "running")
    f = c.get(f"/api/forecast/{job['id']}").json()
    assert f["state"] == "done", f.get("error")
    assert f["done"] == 4 and f["varied"] == ["hazards.0.rain"]
    # by hand: member i's water stands at depth_m(t) everywhere; it passes 0.3 m by
    # T + H when its factor is above 1.0667 (the live state's water up to T is common)
    sc = s.scenario
    factors = [d["hazards.0.rain"] for d in unc.sample(unc.parameters(sc), seed=sc.seed,
                                                         runs=4, method="monte_carlo")]
    ends = [depth_m(2100.0, 1200.0, k) for k in factors]
    assert all(abs(e - 0.3) > 1e-3 for e in ends)  # no member on the edge
    expected = np.mean([e >= 0.3 for e in ends])
    assert 0 < expected < 1
    # the risk map: probabilities in [0, 1], the share of the 4 members
    risk = f["prob_depth_0.3m"]
    p = np.array([[np.nan if v is None else v for v in row] for row in risk["values"]])
    assert p.shape == tuple(risk["shape"]) == world.terrain.shape  # small: not pooled
    inside = p[np.isfinite(p)]
    assert inside.size == world.terrain.mask.sum()
    assert ((inside >= 0) & (inside <= 1)).all()
    assert np.allclose(inside, expected)
    assert risk["max"] == expected and risk["image"].startswith("data:image/png;base64,")
    # the gauges: p5 <= p50 <= p95 at every time, times in (T, T + H]
    assert {(g["gauge"], g["quantity"]) for g in f["gauges"]} == {
        (n, q) for n in ("low", "corner") for q in ("depth_m", "level_m")}
    for g in f["gauges"]:
        t = np.array(g["time_s"])
        p5, p50, p95 = (np.array(g[k]) for k in ("p5", "p50", "p95"))
        assert ((t > 1200.0) & (t <= 2100.0)).all() and t.size > 0
        assert (p5 <= p50 + 1e-12).all() and (p50 <= p95 + 1e-12).all()
        if g["quantity"] == "depth_m":  # the band spans the driest to the wettest member
            assert t[-1] == 2100.0
            assert p5[-1] == pytest.approx(min(ends), abs=1e-3)
            assert p95[-1] == pytest.approx(max(ends), abs=1e-3)
    # every street closes at 0.3 m: each open one closes with the members that pass it
    # (v2-2 was closed at 20 min by the scripted plan: not listed)
    assert f["closed_now"] == ["v2-2"]
    assert len(f["roads"]) == 10 and "v2-2" not in {r["road_id"] for r in f["roads"]}
    assert {r["p_closed"] for r in f["roads"]} == {expected}
    assert set(f["fan_charts"]) == {"low", "corner"}
    page = c.get(f["report"])
    assert page.status_code == 200 and "fan chart low" in page.text
    # the fork left the live run alone: it still stands at 1200 s, and the log has it
    assert s.time_s == 1200.0 and float(s.sim.env.now) == pytest.approx(1200.0)
    assert s.decisions.items[-1].text == "forecast from now: 4 members, 0.25 h ahead"
    # stop: the output folder keeps the forecast's files beside the run's
    s.stop()
    assert s.wait(60)
    kept = s.folder / "forecasts" / f"forecast-{job['id']}"
    assert (kept / "report.html").is_file() and (kept / "prob_depth_0.3m.tif").is_file()
    assert not (kept / "now.ck").exists() and (s.folder / "summary.json").is_file()


def test_the_live_drill_keeps_advancing_while_a_forecast_runs(world, tmp_path) -> None:
    """The members run in a worker process; the live clock moves on meanwhile."""
    s = DrillSession(scenario(world), tmp_path / "out", world=world, speed=120.0,
                     after_action=False)  # fmt: skip
    c = client(s, workers=1)
    s.start()
    try:
        _wait(lambda: s.time_s >= 300.0)
        r = c.post("/api/forecast", json={"members": 3, "horizon": "20min"}, headers=CTL)
        assert r.status_code == 200, r.text
        fid = r.json()["id"]
        assert c.post("/api/forecast", json={}, headers=CTL).status_code == 409
        seen = []
        deadline = time.monotonic() + 600
        while c.app.state.forecasts.jobs[fid]["state"] == "running":
            assert time.monotonic() < deadline, "the forecast did not end"
            seen.append(s.time_s)
            time.sleep(0.05)
        job = c.get(f"/api/forecast/{fid}").json()
        assert job["state"] == "done", job.get("error")
        assert len(seen) >= 2 and seen[-1] > seen[0], "the live clock stood still"
        # the products came back from the worker process too (DrillProducts)
        assert len(job["prob_depth_0.3m"]["values"]) == job["prob_depth_0.3m"]["shape"][0]
        assert c.get(f"/api/forecast/{fid}/report.html").status_code == 200
    finally:
        s.stop()
        s.wait(120)
