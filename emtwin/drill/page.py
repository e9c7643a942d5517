"""The drill page: the live map (deck.gl, the same bundle and layer builders as ``map.html``),
the clock and its controls, the headline figures, the decision forms, the injects and the
what-if panel. The page is one HTML document; deck.gl is served at ``/deck.js``; the
moving parts arrive over the websocket (see :mod:`emtwin.drill.app`).
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pydeck as pdk
from PIL import Image

from emtwin.drill import forecast_view
from emtwin.drill.live import HEADLINE_LABELS
from emtwin.sim.results import Results
from emtwin.viz import agents, layers
from emtwin.viz._common import PIXELS, ROAD_STATE_COLORS, png_data_uri
from emtwin.viz.map import _script_json, _view

__all__ = ["build_page", "page_config"]

#: Speeds offered on the page: simulated s per wall s, label.
SPEEDS = [(1, "1x"), (10, "10x"), (30, "30x"), (60, "60x"), (120, "120x"), (300, "300x"),
          (900, "900x"), (1_000_000, "max")]  # fmt: skip
#: Road state colours on the live map: open, slowed, closed, one way (contraflow); RGBA.
ROAD_COLORS = [list(c) for c in ROAD_STATE_COLORS] + [[40, 110, 220, 255]]


def _place_view(session: Any) -> Results:
    """A Results holding only the place of the session's run (its map feed's copy)."""
    return Results(summary={}, events=None, timeseries=None, scenario=session.scenario,
                   **session.feed.parts)  # type: ignore[arg-type]  # fmt: skip


def _static_groups(view: Results) -> list[Any]:
    """The fixed layers, built by the map's own builders from a place-only Results."""
    builders = [lambda: layers.terrain_layer(view), lambda: layers.roads_layer(view),
                lambda: agents.shelters_layer(view), lambda: agents.facilities_layer(view)]
    return [g for g in (b() for b in builders) if g is not None]


def _blank_png() -> str:
    return png_data_uri(Image.fromarray(np.zeros((1, 1, 4), dtype=np.uint8), mode="RGBA"))


def _choices(session: Any) -> dict[str, Any]:
    """What the decision forms offer: the action kinds of this run and the names they take."""
    parts, sc = session.feed.parts, session.scenario
    roads, places = parts["roads"], parts["places"]
    road_ids = sorted({str(r) for r in roads["road_id"]}) if roads is not None else []
    zones = [str(z.name) for z in sc.evacuation.zones] if sc.evacuation else []
    types = sorted({r.type for r in sc.response.resources}) if sc.response else []
    return {
        "kinds": session.sim.action_kinds,
        "roads": road_ids,
        "zones": ["all", *zones],
        "shelters": [str(n) for n in places["shelters"]["name"]],
        "stations": [str(n) for n in places["stations"]["name"]],
        "unit_types": types,
    }


def page_config(session: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the deck.gl JSON of the map's layers, the page's configuration)."""
    view = _place_view(session)
    groups = _static_groups(view)
    static = [lyr for g in groups for lyr in g.layers]
    water = pdk.Layer("BitmapLayer", id="water", image=pdk.types.String(_blank_png()),
                      bounds=session.feed.water_bounds(),
                      texture_parameters={"minFilter": "nearest", "magFilter": "nearest"})
    calls = pdk.Layer("ScatterplotLayer", id="calls", data=[], get_position="pos",
                      get_radius=6, radius_units=PIXELS, stroked=True, line_width_min_pixels=2,
                      get_fill_color=[215, 25, 28, 220], get_line_color=[0, 0, 0, 255],
                      pickable=True)  # fmt: skip
    units = pdk.Layer("ScatterplotLayer", id="units", data=[], get_position="pos",
                      get_radius=5, radius_units=PIXELS, stroked=True, line_width_min_pixels=1,
                      get_fill_color=[255, 255, 255, 255], get_line_color=[20, 20, 20, 255],
                      pickable=True)  # fmt: skip
    risk = forecast_view.risk_layer(session, _blank_png())
    order = []
    for lyr in static:
        order.append(lyr)
        if lyr.id == "terrain":
            order += [water, risk]
    if water not in order:
        order[:0] = [water, risk]
    order += [calls, units]
    deck = pdk.Deck(layers=order, initial_view_state=_view(view),
                    views=[pdk.View(type="MapView", controller=True)], map_provider=None,
                    map_style=None)  # fmt: skip
    data = {lyr.id: lyr.data for lyr in order}
    try:
        for lyr in order:
            lyr.data = []
        deck_json = json.loads(deck.to_json())
    finally:
        for lyr in order:
            lyr.data = data[lyr.id]
    for lyr in deck_json["layers"]:
        lyr["data"] = data[lyr["id"]]
    shelters = next((g for g in groups if g.group == "Shelters"), None)
    cmax = max([float(c) for c in view.places["shelters"]["capacity"]] + [1.0])
    cfg = {
        "title": session.scenario.name,
        "end_s": session.end_s,
        "speeds": [list(s) for s in SPEEDS],
        "road_colors": ROAD_COLORS,
        "road_names": ["open", "slowed", "closed", "one way (contraflow)"],
        "shelter_k": 26.0 / float(np.sqrt(cmax)) if shelters else 0.0,
        "headline": HEADLINE_LABELS,
        "choices": _choices(session),
        "legends": [g.legend.replace("shelter (no occupancy in this run)", "people in it now")
                    for g in groups if g.legend and g.group != "Roads"],
    }
    return deck_json, cfg


def build_page(session: Any) -> str:
    """The whole drill page (HTML)."""
    deck_json, cfg = page_config(session)
    title = html.escape(str(session.scenario.name))
    return "".join([
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f"<title>{title} · emtwin drill</title>\n",
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<style>{CSS}</style>\n</head>\n<body>\n", BODY,
        f'<script type="application/json" id="deck-json">{_script_json(deck_json)}</script>\n',
        f'<script type="application/json" id="drill-config">{_script_json(cfg)}</script>\n',
        '<script src="/deck.js"></script>\n', f"<script>{SCRIPT}</script>\n",
        forecast_view.html(), "</body>\n</html>\n",
    ])  # fmt: skip


CSS = """
html, body { margin: 0; height: 100%; font: 13px/1.35 system-ui, sans-serif; color: #222; }
#map { position: absolute; inset: 0; background: #dfe4e8; }
.box { position: absolute; background: rgba(255,255,255,0.95); border-radius: 6px;
       box-shadow: 0 1px 4px rgba(0,0,0,0.3); padding: 8px 10px; z-index: 2; }
#left { top: 10px; left: 10px; width: 300px; max-height: calc(100% - 90px); overflow: auto; }
#right { top: 10px; right: 10px; width: 300px; max-height: calc(100% - 90px); overflow: auto; }
#bar { left: 10px; right: 10px; bottom: 10px; display: flex; gap: 8px; align-items: center; }
h1 { font-size: 15px; margin: 0 0 2px; } h2 { font-size: 13px; margin: 10px 0 4px; }
#clock { font: bold 18px ui-monospace, monospace; min-width: 110px; }
#head td { padding: 1px 4px; } #head td.v { text-align: right; font-weight: 600; }
#msgs div, #log div { border-left: 3px solid #d47a00; padding: 2px 6px; margin: 3px 0;
                      background: #fff6e8; }
#log div { border-color: #1f5fa8; background: #eef4fb; font-size: 12px; }
.err { color: #b00; } .ok { color: #06612a; } .sub { color: #555; font-size: 12px; }
.row { display: flex; gap: 4px; align-items: center; margin: 3px 0; flex-wrap: wrap; }
.row label { min-width: 48px; } input, select, button { font: inherit; }
button { cursor: pointer; } .control-only { display: none; } body.control .control-only {
  display: block; } #whatif table { border-collapse: collapse; font-size: 12px; }
#whatif td, #whatif th { border: 1px solid #ddd; padding: 1px 4px; }
.sw { display: flex; align-items: center; gap: 6px; font-size: 12px; }
.sw i { display: inline-block; width: 14px; height: 10px; box-sizing: border-box; }
"""

BODY = """
<div id="map"></div>
<div id="left" class="box">
  <h1 id="title"></h1><div class="sub">role: <b id="role">?</b> · <span id="status">
  connecting</span></div>
  <h2>Situation now</h2><table id="head"></table>
  <h2>Decide</h2>
  <div class="row"><select id="kind" aria-label="action"></select></div>
  <div id="args"></div>
  <div class="row"><button id="issue">Issue now</button><span id="result"></span></div>
  <h2>Messages</h2><div id="msgs"><div class="sub">none yet</div></div>
  <div class="control-only"><h2>Inject (control)</h2>
    <div class="row"><label>to</label><input id="inj-to" value="players" size="10"></div>
    <div class="row"><textarea id="inj-msg" rows="2" cols="32" aria-label="message">
</textarea></div>
    <div class="row"><button id="inj-send">Release now</button></div></div>
</div>
<div id="right" class="box">
  <div id="legend"></div>
  <div class="control-only"><h2>What-if from now (control)</h2>
    <div class="row"><label>against</label><select id="wf-alt">
      <option value="">no further action</option><option value="plan">a plan file:</option>
    </select></div>
    <div class="row"><input id="wf-plan" placeholder="plans/alternative.yaml" size="28"></div>
    <div class="row"><label>hours</label><input id="wf-hours" type="number" value="2" min="0.25"
      step="0.25" style="width:60px"><button id="wf-run">Fork and run</button></div>
    <div id="whatif"></div></div>
  <h2>Decisions</h2><div id="log"><div class="sub">none yet</div></div>
</div>
<div id="bar" class="box">
  <span id="clock">T+0:00</span>
  <button id="pause" class="control-only" style="display:none">Pause</button>
  <select id="speed" aria-label="speed" title="simulated time per wall second"></select>
  <span class="control-only" style="display:none">jump to <input id="jump" size="6"
    placeholder="h:mm" aria-label="jump to time"> <button id="go">Go</button></span>
  <span id="ck" class="sub"></span><span style="flex:1"></span>
  <span id="end" class="sub"></span>
  <button id="stop" class="control-only" style="display:none">End exercise</button>
</div>
"""

SCRIPT = r"""
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const CFG = JSON.parse($("drill-config").textContent);
  const TOKEN = new URLSearchParams(location.search).get("token") || "";
  const E = (window.emtwin = { ready: false, rendered: 0, errors: [], frames: 0, t: 0,
                               roads: [], latencies: [], pending: null, state: null,
                               hooks: {} });
  window.addEventListener("error", (ev) => E.errors.push(String(ev.message)));
  const pad = (n) => String(n).padStart(2, "0");
  const fmt = (t) => { t = Math.round(t); const h = Math.floor(t / 3600),
    m = Math.floor((t % 3600) / 60); return "T+" + h + ":" + pad(m); };
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const deck = createDeck({ container: $("map"),
    jsonInput: JSON.parse($("deck-json").textContent), tooltip: false, showError: true });
  E.deck = deck;
  const base = {};
  for (const l of deck.props.layers) base[l.id] = l;
  let roadState = [], occ = [], units = [], calls = [], water = null, version = 0;
  const PRIO = [[215, 25, 28], [253, 141, 60], [254, 217, 118], [200, 200, 200]];
  const CALLSTATE = { waiting: [0, 0, 0], lost: [120, 0, 120], done: [150, 150, 150] };
  const UNITSTATE = { idle: [255, 255, 255], returning: [180, 220, 255] };
  function draw() {
    version += 1;
    const layers = deck.props.layers.map((l0) => {
      const l = base[l0.id];
      if (E.hooks[l.id]) return E.hooks[l.id](l);  // e.g. the forecast's risk map
      if (l.id === "roads") return l.clone({
        getColor: (d, i) => CFG.road_colors[roadState[i.index] || 0],
        getWidth: (d, i) => ((roadState[i.index] || 0) === 2 ? d.w + 2 : d.w),
        updateTriggers: { getColor: version, getWidth: version } });
      if (l.id === "water" && water) return l.clone({ image: water });
      if (l.id === "shelters" && occ.length) return l.clone({
        getRadius: (d, i) => 2 + CFG.shelter_k * Math.sqrt(occ[i.index] || 0),
        updateTriggers: { getRadius: version } });
      if (l.id === "units") return l.clone({ data: units,
        getFillColor: (d) => (UNITSTATE[d.s] || [30, 60, 200]).concat([255]) });
      if (l.id === "calls") return l.clone({ data: calls,
        getFillColor: (d) => PRIO[Math.min(Math.max(d.p, 1), 4) - 1]
          .concat([d.s === "done" ? 90 : 230]),
        getLineColor: (d) => (CALLSTATE[d.s] || [255, 255, 255]).concat([255]) });
      return l;
    });
    deck.setProps({ layers });
  }
  E.draw = draw;
  deck.setProps({
    onAfterRender: () => {
      E.rendered += 1;
      if (E.pending && E.pending.shown) {
        E.latencies.push(performance.now() - E.pending.t0); E.pending = null;
      }
    },
    onClick: (info) => {
      if (info.layer && info.layer.id === "roads" && info.object) {
        const k = $("kind").value;
        if (!["close_road", "open_road", "contraflow"].includes(k)) {
          $("kind").value = "close_road"; args();
        }
        $("a-value").value = info.object.i;
      }
    },
    getTooltip: (info) => {
      const o = info.object; if (!o || !info.layer) return null;
      const id = info.layer.id;
      let h = null;
      if (id === "roads") h = "<b>" + esc(o.n || o.i) + "</b> (" + esc(o.i) + ")<br>now: " +
        CFG.road_names[roadState[info.index] || 0] + "<br>click: pick it for a decision";
      else if (id === "shelters" || id === "shelter-capacity") h = "<b>" + esc(o.name) +
        "</b> (shelter)<br>capacity: " + Math.round(o.cap) + "<br>people now: " +
        Math.round(occ[info.index] || 0);
      else if (id === "units") h = "<b>" + esc(o.id) + "</b> (" + esc(o.ty) + ")<br>" +
        esc(o.s) + ", station " + esc(o.st);
      else if (id === "calls") h = "<b>" + esc(o.id) + "</b> " + esc(o.ty) + ", priority " +
        o.p + "<br>at " + fmt(o.t) + ", now " + esc(o.s);
      else if (id === "facilities") h = "<b>" + esc(o.name) + "</b> (" + o.kind + ")";
      return h ? { html: h, style: { fontSize: "12px" } } : null;
    },
  });

  // ---- headline, legend, controls
  $("title").textContent = CFG.title;
  $("legend").innerHTML = "<b>Roads</b>" + CFG.road_colors.map((c, i) =>
    '<div class="sw"><i style="background:rgb(' + c.slice(0, 3).join(",") + ')"></i>' +
    CFG.road_names[i] + "</div>").join("") + CFG.legends.join("");
  for (const s of CFG.speeds) {
    const o = document.createElement("option"); o.value = s[0]; o.textContent = s[1];
    $("speed").appendChild(o);
  }
  async function post(path, body) {
    const r = await fetch(path, { method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + TOKEN } });
    let j = null; try { j = await r.json(); } catch (e) { j = null; }
    if (!r.ok) throw new Error((j && (typeof j.detail === "string" ? j.detail
      : JSON.stringify(j.detail))) || r.statusText);
    return j;
  }
  const say = (el, ok, text) => { el.className = ok ? "ok" : "err"; el.textContent = text; };
  $("speed").addEventListener("change", () =>
    post("/api/control", { speed: Number($("speed").value) }).catch((e) => alert(e.message)));
  $("pause").addEventListener("click", () => post("/api/control",
    { command: E.state && E.state.paused ? "resume" : "pause" }).catch((e) => alert(e.message)));
  $("stop").addEventListener("click", () =>
    post("/api/control", { command: "stop" }).catch((e) => alert(e.message)));
  $("go").addEventListener("click", () => {
    const v = $("jump").value.trim(); const p = v.split(":");
    const s = p.length === 2 ? Number(p[0]) * 3600 + Number(p[1]) * 60 : Number(v) * 60;
    post("/api/control", { time_s: s }).catch((e) => alert(e.message));
  });
  $("inj-send").addEventListener("click", () => post("/api/inject",
    { to: $("inj-to").value, message: $("inj-msg").value })
    .then(() => { $("inj-msg").value = ""; }).catch((e) => alert(e.message)));
  $("wf-run").addEventListener("click", () => {
    const plan = $("wf-alt").value === "plan" ? $("wf-plan").value : null;
    post("/api/whatif", { plan, hours: Number($("wf-hours").value) })
      .catch((e) => { $("whatif").innerHTML = '<span class="err">' + esc(e.message) + "</span>"; });
  });

  // ---- decision forms
  const C = CFG.choices;
  const LABEL = { warn: "warn a zone", open_shelter: "open a shelter",
    close_shelter: "close a shelter", close_road: "close a road", open_road: "open a road",
    contraflow: "contraflow on a road", move_units: "move units" };
  for (const k of C.kinds) {
    const o = document.createElement("option"); o.value = k; o.textContent = LABEL[k] || k;
    $("kind").appendChild(o);
  }
  const sel = (id, items) => '<select id="' + id + '">' + items.map((x) =>
    '<option value="' + esc(x) + '">' + esc(x) + "</option>").join("") + "</select>";
  const LIST = { warn: C.zones, open_shelter: C.shelters, close_shelter: C.shelters };
  function args() {
    const k = $("kind").value;
    let h;
    if (k === "move_units") {
      h = '<div class="row"><label>type</label>' + sel("a-type", C.unit_types) +
        '<label>count</label><input id="a-count" type="number" value="1" min="1" ' +
        'style="width:50px"></div><div class="row"><label>from</label>' +
        sel("a-from", C.stations) + "<label>to</label>" + sel("a-to", C.stations) + "</div>";
    } else if (LIST[k]) {
      h = '<div class="row">' + sel("a-value", LIST[k]) + "</div>";
    } else {
      h = '<div class="row"><input id="a-value" list="road-ids" size="24" ' +
        'placeholder="road id (or click a road)"><datalist id="road-ids">' +
        C.roads.map((r) => '<option value="' + esc(r) + '">').join("") + "</datalist></div>";
    }
    $("args").innerHTML = h;
  }
  $("kind").addEventListener("change", args);
  args();
  function action() {
    const k = $("kind").value;
    if (k === "move_units") return { move_units: { type: $("a-type").value,
      count: Number($("a-count").value), from: $("a-from").value, to: $("a-to").value } };
    return { [k]: $("a-value").value };
  }
  E.issue = async (a) => {
    // timed from the click to the first frame drawn with the decision in it (the
    // websocket may bring it before the POST's answer)
    E.pending = { t0: performance.now(), after: E.state ? E.state.decisions : 0, shown: false };
    try {
      const j = await post("/api/actions", a);
      say($("result"), true, "done at " + fmt(j.time_s));
      return j;
    } catch (e) { E.pending = null; say($("result"), false, e.message); return null; }
  };
  $("issue").addEventListener("click", () => E.issue(action()));

  // ---- the live feed
  function headline(s) {
    const rows = Object.entries(CFG.headline).filter(([k]) => s[k] != null).map(([k, lab]) =>
      "<tr><td>" + esc(lab) + '</td><td class="v">' + (k === "response_p90_s"
        ? fmt(s[k]).slice(2) + " h:mm" : Number(s[k]).toLocaleString()) + "</td></tr>");
    $("head").innerHTML = rows.join("");
  }
  function whatif(w) {
    if (!w) return;
    if (w.state !== "done") {
      $("whatif").innerHTML = w.state === "failed" ? '<span class="err">' + esc(w.error) +
        "</span>" : "running " + fmt(w.from_s) + " to " + fmt(w.to_s) + "...";
      return;
    }
    $("whatif").innerHTML = "<div class='sub'>" + fmt(w.from_s) + " to " + fmt(w.to_s) +
      ": A = current decisions, B = " + esc(w.alternative) + "</div><table><tr><th></th>" +
      "<th>A</th><th>B</th><th>B-A</th></tr>" + w.rows.map((r) => {
        const dur = r.key === "response_p90_s";  // seconds: shown as h:mm, the difference in min
        const v = (x) => (x == null ? "" : dur ? fmt(x).slice(2) : esc(x));
        const d = r.diff == null ? null : dur ? Math.round(r.diff / 60) : r.diff;
        return "<tr><td>" + esc(r.label) + "</td><td>" + v(r.a) + "</td><td>" + v(r.b) +
          "</td><td>" + (d == null ? "" : (r.better ? "<b>" : "") + (d > 0 ? "+" : "") +
          Math.round(d * 10) / 10 + (dur ? " min" : "") +
          (r.better ? " (" + r.better + " better)</b>" : "")) + "</td></tr>";
      }).join("") + "</table>";
  }
  function onMessage(m) {
    const s = m.state, f = m.frame;
    E.state = s; E.t = s.time_s; E.frames += 1; E.role = m.role;
    document.body.classList.toggle("control", m.role === "control");
    for (const el of document.querySelectorAll("#bar .control-only"))
      el.style.display = m.role === "control" ? "inline" : "none";
    $("role").textContent = m.role;
    $("clock").textContent = fmt(s.time_s);
    $("status").textContent = s.state === "running" ? (s.paused ? "paused" : "running at " +
      (s.speed >= 1e6 ? "max" : s.speed + "x")) + (s.keep_up ? " (can go " +
      Math.round(s.keep_up) + "x)" : "") : s.state + (s.folder ? ": " + s.folder : "");
    $("pause").textContent = s.paused ? "Resume" : "Pause";
    $("end").textContent = "ends " + fmt(s.end_s);
    $("ck").textContent = s.checkpoints.length ? "checkpoints: " +
      s.checkpoints.map(fmt).join(" ") : "";
    if (document.activeElement !== $("speed")) {
      const best = CFG.speeds.reduce((a, b) => Math.abs(Math.log(b[0] / s.speed)) <
        Math.abs(Math.log(a[0] / s.speed)) ? b : a);
      $("speed").value = best[0];
    }
    headline(s);
    roadState = f.roads; occ = f.shelters; units = f.units; calls = f.calls;
    E.roads = roadState;
    if (f.water) water = f.water;
    draw();
    if (E.pending && s.decisions > E.pending.after) E.pending.shown = true;
    $("msgs").innerHTML = m.messages.length ? m.messages.slice().reverse().map((x) => "<div><b>" +
      fmt(x.released_s) + " to " + esc(x.to) + ":</b> " + esc(x.message) + (x.action ?
      ' <span class="sub">(' + esc(JSON.stringify(x.action)) + ")</span>" : "") + "</div>")
      .join("") : '<div class="sub">none yet</div>';
    $("log").innerHTML = m.decisions.length ? m.decisions.slice().reverse().map((d) =>
      "<div>" + fmt(d.time_s) + " <b>" + esc(d.role) + "</b>: " + esc(d.text) + "</div>")
      .join("") : '<div class="sub">none yet</div>';
    whatif(m.whatif);
    if (E.onForecast) E.onForecast(m.forecast);
    E.ready = true;
  }
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") +
      location.host + "/ws?token=" + encodeURIComponent(TOKEN));
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      $("status").textContent = ev.code === 1008 ? "the token in the address is not valid"
        : "disconnected (the drill has ended or the server stopped)";
    };
    E.ws = ws;
  }
  connect();
})();
"""
