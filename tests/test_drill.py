"""The drill: a live run driven over HTTP (FastAPI's test client), and its after-action review."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="fastapi (the drill extra) is needed")
pytest.importorskip("httpx", reason="httpx (the test extra) is needed for the test client")

from drill_world import drill_scenario, drill_world  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from test_cli import town  # noqa: E402, F401 - the fixture

from emtwin.drill.app import create_app  # noqa: E402
from emtwin.drill.injects import read_injects  # noqa: E402
from emtwin.drill.session import DrillSession  # noqa: E402
from emtwin.errors import ScenarioError  # noqa: E402
from emtwin.sim import Simulation  # noqa: E402

CTL = {"Authorization": "Bearer control-token"}
PLY = {"Authorization": "Bearer player-token"}


@pytest.fixture(scope="module")
def world():
    return drill_world()


def session(world, tmp_path: Path, **kw) -> DrillSession:
    sc = drill_scenario(world, **kw.pop("scenario", {}))
    sc.flood.backend = "cpu"
    return DrillSession(sc, tmp_path / "out", world=world, **kw)


def client(s: DrillSession) -> TestClient:
    return TestClient(create_app(s, token="control-token", player_token="player-token"))


def test_posts_need_a_token_and_control_endpoints_the_control_token(world, tmp_path) -> None:
    s = session(world, tmp_path)
    c = client(s)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "control-token"}):
        assert c.post("/api/actions", json={"close_road": "h1-1"}, headers=headers).status_code \
            == 401
        assert c.post("/api/control", json={"command": "pause"}, headers=headers).status_code \
            == 401
    assert c.post("/api/control", json={"command": "pause"}, headers=PLY).status_code == 403
    assert c.post("/api/whatif", json={}, headers=PLY).status_code == 403
    assert c.post("/api/control", json={"command": "pause"}, headers=CTL).status_code == 200
    # nothing the refused requests asked for happened
    assert not s.sim.roads.closed_by_plan.any()
    assert [d.text for d in s.decisions.items] == ["pause"]
    assert c.get("/api/state").json()["paused"] is True


def test_every_action_kind_is_applied_at_the_current_time(world, tmp_path) -> None:
    s = session(world, tmp_path, scenario={"actions": []})
    c = client(s)
    s.step_to(600.0)
    disp = s.sim.component("dispatch")
    at_b = sum(u.station == "B" for u in disp.core.units)
    bodies = [{"close_road": "h1-1"}, {"warn": "north"}, {"close_shelter": "East"},
              {"open_shelter": "East"}, {"contraflow": "h0-0"}, {"open_road": "h1-1"},
              {"close_road": "v3-3"},
              {"move_units": {"type": "ambulance", "count": 1, "from": "A", "to": "B"}}]
    for body in bodies:
        r = c.post("/api/actions", json=body, headers=PLY)
        assert r.status_code == 200, r.text
        assert r.json() == {"time_s": 600.0}
    ev = s.sim.recorder.events()
    acts = ev[ev.kind == "action"]
    assert acts.time_s.round(6).tolist() == [600.0] * len(bodies)
    assert acts.entity.tolist() == [next(iter(b)) for b in bodies]
    assert all(json.loads(d)["by"] == "player" for d in acts.details)
    roads = s.world.roads
    # v3-3 closed (both directions), h1-1 closed then opened again: 2 edges closed by plan
    assert np.flatnonzero(s.sim.roads.closed_by_plan).tolist() == \
        sorted(roads.edges_named("v3-3").tolist())
    assert int(s.sim.roads.closed_contraflow.sum()) == 1  # one direction of h0-0 reversed
    evac = s.sim.component("evacuation")
    assert evac.issued[evac.zone_names.index("north")]
    assert sum(u.station == "B" for u in disp.core.units) == at_b + 1
    # the map shows v3-3 closed (state 2), h0-0 one way (3)
    frame = c.get("/api/frame").json()
    group = s.feed.group
    assert {frame["roads"][g] for g in group[roads.edges_named("v3-3")]} == {2}
    assert {frame["roads"][g] for g in group[roads.edges_named("h0-0")]} == {3}
    log = [json.loads(x) for x in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines()]
    assert [d["action"] for d in log] == bodies
    assert {(d["time_s"], d["role"]) for d in log} == {(600.0, "player")}


def test_a_bad_action_gets_422_with_the_message_validate_gives(world, tmp_path) -> None:
    sc = drill_scenario(world, actions=[{"at": 60, "close_road": "nowhere"}])
    with pytest.raises(ScenarioError) as err:
        Simulation(sc, world=world)
    expected = str(err.value).split("actions.0: ", 1)[1]
    s = session(world, tmp_path)
    c = client(s)
    r = c.post("/api/actions", json={"close_road": "nowhere"}, headers=PLY)
    assert r.status_code == 422 and r.json()["detail"] == expected
    r = c.post("/api/actions", json={"close_road": "h1-1", "warn": "north"}, headers=PLY)
    assert r.status_code == 422 and "exactly one of" in r.json()["detail"]
    r = c.post("/api/actions", json={"move_units": {"type": "ambulance", "from": "A"}},
               headers=PLY)  # fmt: skip
    assert r.status_code == 422 and "move_units.to" in r.json()["detail"]
    r = c.post("/api/actions", json={"at": 0, "close_road": "h1-1"}, headers=PLY)
    assert r.status_code == 422 and "leave out `at`" in r.json()["detail"]
    assert s.decisions.items == [] and not s.sim.roads.closed_by_plan.any()


def _wait(cond, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "the drill did not get there"
        time.sleep(0.05)


def test_pause_holds_the_clock_and_resume_moves_it_on(world, tmp_path) -> None:
    s = session(world, tmp_path, speed=300.0, after_action=False)
    c = client(s)
    s.start()
    try:
        _wait(lambda: s.time_s >= 120.0)
        r = c.post("/api/control", json={"command": "pause"}, headers=CTL)
        assert r.status_code == 200 and r.json()["paused"] is True
        t_paused = c.get("/api/state").json()["time_s"]
        time.sleep(1.0)  # at 300x a running clock would move 300 s
        state = c.get("/api/state").json()
        assert state["time_s"] == t_paused and state["running"] is False
        r = c.post("/api/control", json={"command": "resume", "speed": 1e6}, headers=CTL)
        assert r.json()["speed"] == 1e6 and r.json()["paused"] is False
        _wait(lambda: s.time_s > t_paused)
    finally:
        s.stop()
        s.wait(120)


def test_stop_writes_the_output_folder_decisions_and_review(world, tmp_path) -> None:
    s = session(world, tmp_path)
    c = client(s)
    s.step_to(900.0)
    assert c.post("/api/actions", json={"warn": "all"}, headers=PLY).json() == {"time_s": 900.0}
    s.step_to(1200.0)
    r = c.post("/api/control", json={"command": "stop"}, headers=CTL)
    assert r.status_code == 200 and r.json()["state"] == "done"
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["stopped_at_s"] == 1200.0
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert ts.time_s.max() == 1200.0
    log = [json.loads(x) for x in (out / "decisions.jsonl").read_text().splitlines()]
    assert [(d["time_s"], d["role"], d["text"]) for d in log] == [
        (900.0, "player", "warn all"), (1200.0, "control", "stop")]
    page = (out / "after-action.html").read_text()
    assert "warn all" in page and "scripted plan" in page and "no actions" in page
    # when the players first differed from the scripted run (warning at 40 min): at the
    # first sample after the warning of 900 s
    cmp = s_compare(s)
    warned = next(r for r in cmp if r["key"] == "warned")
    assert warned["first_s"] == 1200.0 and warned["then"] == "better"
    assert warned["end_other"] == 0 < warned["end_players"]
    assert c.post("/api/actions", json={"warn": "all"}, headers=PLY).status_code == 422


def s_compare(s: DrillSession) -> list[dict]:
    from emtwin.drill.after_action import compare_runs

    players = pd.read_parquet(s.folder / "timeseries.parquet")
    return compare_runs(type("R", (), {"timeseries": players})(), s.reruns["scripted"])


def test_without_decisions_the_players_run_is_the_scripted_run(world, tmp_path) -> None:
    """Common random numbers: the drill (stepped, paced, checkpointed) and the scripted re-run
    are the same event, event for event."""
    s = session(world, tmp_path, checkpoint_every_s=600.0)
    s.step_to(s.end_s)
    s.finish()
    players = s.sim._results(0.0)
    scripted = s.reruns["scripted"]
    pd.testing.assert_frame_equal(players.events, scripted.events)
    pd.testing.assert_frame_equal(players.timeseries, scripted.timeseries)
    for section in ("flood", "evacuation", "dispatch"):
        wall = {"kernel_wall_s"}  # wall-clock time, not a result
        assert {k: v for k, v in players.summary[section].items() if k not in wall} == \
            {k: v for k, v in scripted.summary[section].items() if k not in wall}
    assert len(players.events[players.events.kind == "call"]) > 0  # calls came in
    cmp = s_compare(s)
    assert cmp and all(r["first_s"] is None and r["end"] == "same" for r in cmp)
    # the no-actions run lacks the scripted closure of v2-2 at 20 min
    none = s.reruns["no actions"]
    assert (players.events.kind == "road_closed").sum() > (none.events.kind == "road_closed").sum()


def test_jumping_back_replays_from_a_checkpoint(world, tmp_path) -> None:
    s = session(world, tmp_path, checkpoint_every_s=600.0, scenario={"actions": []})
    s.step_to(1200.0)
    first = s.sim.recorder.timeseries()
    s.act({"close_road": "h1-1"}, "player")
    assert sorted(s.checkpoints) == [0.0, 600.0, 1200.0]
    s.jump(700.0)  # back to the checkpoint at 600 s, then on to 700 s
    assert s.time_s == 700.0 and sorted(s.checkpoints) == [0.0, 600.0]
    assert not s.sim.roads.closed_by_plan.any()  # the closure at 1200 s is undone
    s.step_to(1200.0)
    pd.testing.assert_frame_equal(s.sim.recorder.timeseries(), first)


def test_injects_are_released_at_their_times_with_their_actions(world, tmp_path) -> None:
    msel = tmp_path / "msel.csv"
    msel.write_text("at,to,message,action\n"
                    "5min,players,The east bridge is reported cracked,\n"
                    "10min,control,Hold the ambulances,\n"
                    '7min,players,"Police close h1-1","close_road: h1-1"\n')  # fmt: skip
    injects = read_injects(msel)
    assert [i.at_s for i in injects] == [300.0, 420.0, 600.0]
    s = session(world, tmp_path, injects=injects, scenario={"actions": []})
    s.step_to(500.0)
    assert [m["message"] for m in s.messages("player")] == ["The east bridge is reported cracked",
                                                            "Police close h1-1"]  # fmt: skip
    ev = s.sim.recorder.events()
    closed = ev[ev.kind == "road_closed"]
    assert closed.time_s.round(6).tolist() == [420.0] and closed.entity.tolist() == ["h1-1"]
    s.step_to(600.0)
    assert len(s.messages("player")) == 2 and len(s.messages("control")) == 3
    # the players' log does not show control's inject either
    seen = {r: [d["text"] for d in s.decisions_seen(r)] for r in ("player", "control")}
    assert "inject to control: Hold the ambulances" in seen["control"]
    assert not any("Hold the ambulances" in t for t in seen["player"])
    assert len(seen["control"]) == len(seen["player"]) + 1


def test_a_bad_injects_file_names_the_row_and_column(tmp_path) -> None:
    msel = tmp_path / "msel.csv"
    msel.write_text("at,to,message,action\nsoon,players,x,\n1h,players,y,close the road\n")
    with pytest.raises(ScenarioError) as err:
        read_injects(msel)
    msg = str(err.value)
    assert f"{msel}:2: at: expected a duration" in msg and f"{msel}:3: action:" in msg
    (tmp_path / "bad.csv").write_text("time,to,message\n")
    with pytest.raises(ScenarioError, match="missing: at"):
        read_injects(tmp_path / "bad.csv")


def test_what_if_forks_on_the_same_random_streams(world, tmp_path) -> None:
    # the scripted closure of v2-2 at 20 min is still to come at 10 min: B (no further
    # action) lacks exactly its two edges; all else is the same event
    s = session(world, tmp_path)
    c = client(s)
    s.step_to(600.0)
    s.whatif = None
    r = c.post("/api/whatif", json={"hours": 0.25}, headers=CTL)
    assert r.status_code == 200
    _wait(lambda: s.whatif is not None and s.whatif["state"] != "running")
    w = c.get("/api/whatif").json()
    assert w["state"] == "done" and (w["from_s"], w["to_s"]) == (600.0, 1500.0)
    rows = {r["key"]: r for r in w["rows"]}
    assert rows["roads_closed"]["diff"] == -2 and rows["roads_closed"]["better"] == "B"
    assert rows["warned"]["diff"] == 0


def test_the_drill_command_serves_prints_the_token_and_writes_the_folder(
    town, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811 - the fixture
) -> None:
    """``emtwin drill`` with the web server replaced by a client that decides and stops."""
    import uvicorn
    from test_cli import run

    seen: dict = {}

    class FakeServer:
        def __init__(self, config) -> None:
            self.config = config
            self.should_exit = False

        def run(self) -> None:
            seen["host"] = self.config.host
            c = TestClient(self.config.app)
            seen["401"] = c.post("/api/actions", json={"close_road": "r1"}).status_code
            auth = {"Authorization": "Bearer secret"}
            seen["act"] = c.post("/api/actions", json={"close_road": "r1"}, headers=auth).json()
            seen["stop"] = c.post("/api/control", json={"command": "stop"},
                                  headers=auth).status_code  # fmt: skip

    monkeypatch.setattr(uvicorn, "Server", FakeServer)
    out = tmp_path / "drill-out"
    res = run("drill", str(town / "s.yaml"), "--token", "secret", "--no-browser", "--out",
              str(out), "--host", "0.0.0.0", "--speed", "30")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "?token=secret" in res.output and "warning" in res.output.lower()
    assert seen["host"] == "0.0.0.0" and seen["401"] == 401 and seen["stop"] == 200
    assert "time_s" in seen["act"]
    log = [json.loads(x) for x in (out / "decisions.jsonl").read_text().splitlines()]
    assert [d["action"] for d in log if d["action"]] == [{"close_road": "r1"}]
    assert (out / "after-action.html").is_file() and (out / "summary.json").is_file()
