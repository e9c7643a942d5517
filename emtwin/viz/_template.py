"""The page around the deck.gl map: styles, the time bar and the script that drives it.

pydeck's own ``to_html`` page loads deck.gl, fonts and styles from CDNs; this
page instead inlines pydeck's bundled deck.gl (``createDeck`` from
``@deck.gl/jupyter-widget``), so the map opens offline. The deck.gl JSON that
pydeck writes sits in ``<script id="deck-json">`` and the animation data in
``<script id="emtwin-config">``; the script below builds the deck with
``createDeck`` and, at every clock time, clones each animated layer with
its props for that time (the flood image, road colours, trips' ``currentTime`` ...).
"""

from __future__ import annotations

__all__ = ["CSS", "BODY", "SCRIPT"]

CSS = """
html, body { margin: 0; height: 100%; font: 13px/1.35 system-ui, sans-serif; color: #222; }
#map { position: absolute; inset: 0; background: #dfe4e8; }
.box { position: absolute; background: rgba(255,255,255,0.93); border-radius: 6px;
       box-shadow: 0 1px 4px rgba(0,0,0,0.3); padding: 8px 10px; z-index: 2; }
#panel { top: 10px; right: 10px; width: 230px; max-height: calc(100% - 110px); overflow: auto; }
#panel h1 { font-size: 15px; margin: 0 0 4px; }
#panel .sub { color: #555; font-size: 12px; margin-bottom: 6px; }
#layers label { display: block; cursor: pointer; }
#legend > div { margin-top: 6px; }
.sw { display: flex; align-items: center; gap: 6px; font-size: 12px; }
.sw i { display: inline-block; width: 14px; height: 10px; box-sizing: border-box; }
#notes { color: #8a4b00; font-size: 11.5px; margin-top: 6px; }
#timebar { left: 10px; right: 10px; bottom: 10px; display: flex; gap: 10px;
           align-items: center; }
#timebar input[type=range] { flex: 1; }
#play { width: 36px; height: 28px; font-size: 15px; cursor: pointer; }
#clock { font: bold 16px ui-monospace, monospace; min-width: 92px; text-align: right; }
#errors { color: #b00; white-space: pre-wrap; }
"""

BODY = """
<div id="map"></div>
<div id="panel" class="box">
  <h1 id="title"></h1><div class="sub" id="subtitle"></div>
  <div id="layers"></div><div id="legend"></div><div id="notes"></div><div id="errors"></div>
</div>
<div id="timebar" class="box">
  <button id="play" title="play / pause (space)" aria-label="play">&#9654;</button>
  <input id="slider" type="range" aria-label="time">
  <span id="clock">T+0:00</span>
  <select id="speed" title="simulated time per second" aria-label="speed"></select>
</div>
"""

SCRIPT = r"""
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const CFG = JSON.parse($("emtwin-config").textContent);
  const E = (window.emtwin = { t: CFG.t0, playing: false, rendered: 0, ready: false,
                               errors: [] });
  window.addEventListener("error", (ev) => E.errors.push(String(ev.message)));
  const pad = (n) => String(n).padStart(2, "0");
  const fmt = (t) => {
    t = Math.round(t); const sg = t < 0 ? "-" : "+"; t = Math.abs(t);
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
    return "T" + sg + h + ":" + pad(m) + (s ? ":" + pad(s) : "");
  };
  const last = (a, t) => {  // index of the last a[i] <= t, or -1
    let lo = 0, hi = a.length - 1, k = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid] <= t) { k = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return k;
  };
  const stateAt = (s, t) => {  // the state of the last change at or before t
    let v = 0;
    if (s) for (const c of s) { if (c[0] <= t) v = c[1]; else break; }
    return v;
  };
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const arrow = (d, i, k) => {  // as emtwin.viz.storm.arrow_path: [tail, tip, barb, tip, barb]
    const L = i < 0 ? 0 : k * (d.v[i] || 0), c = d.c;
    if (!(L > 0)) return [c, c];
    const b = (d.b[i] * Math.PI) / 180, dx = Math.sin(b), dy = Math.cos(b);
    const kx = 1 / (111320 * Math.cos((c[1] * Math.PI) / 180)), ky = 1 / 111320;
    const P = (s, n) => [c[0] + (s * dx + n * dy) * kx, c[1] + (s * dy - n * dx) * ky];
    const h = 0.3 * L;
    return [P(-L / 2, 0), P(L / 2, 0), P(L / 2 - h, h / 2), P(L / 2, 0), P(L / 2 - h, -h / 2)];
  };
  const callState = (d, t) =>
    (d.w == null || t < d.w ? "waiting" : d.r == null || t < d.r ? "responding" : "done");

  const images = {}, loads = [];
  for (const [id, a] of Object.entries(CFG.anim)) {
    if (a.type !== "frames") continue;
    images[id] = a.images.map((src) => {
      const im = new Image(); im.src = src; loads.push(im.decode()); return im;
    });
  }
  const ANIM = {
    frames: (a, t, id) => ({ image: images[id][a.frame[Math.max(0, last(a.times, t))]] }),
    states: (a, t) => ({ getColor: (d) => a.colors[stateAt(d[a.field], t)],
                         updateTriggers: { getColor: last(a.changes, t) } }),
    trips: (a, t) => ({ currentTime: t, getColor: (d) => a.colors[d.k] || [255, 255, 255] }),
    series: (a, t) => {
      const i = last(a.times, t);
      return { getRadius: (d) => (i < 0 ? 0 : a.r0 + a.k * Math.sqrt(d[a.field][i] || 0)),
               updateTriggers: { getRadius: i } };
    },
    calls: (a, t) => ({
      getFillColor: (d) => (d.t > t ? [0, 0, 0, 0]
        : a.priority[Math.min(Math.max(d.p, 1), a.priority.length) - 1]
          .concat([callState(d, t) === "done" ? 110 : 235])),
      getLineColor: (d) => (d.t > t ? [0, 0, 0, 0] : a.state[callState(d, t)].concat([255])),
      updateTriggers: { getFillColor: t, getLineColor: t } }),
    appear: (a, t) => ({ getFillColor: (d) => (d.t <= t ? a.color : [0, 0, 0, 0]),
                         updateTriggers: { getFillColor: t } }),
    arrows: (a, t) => {
      const i = last(a.times, t);
      return { getPath: (d) => arrow(d, i, a.k), updateTriggers: { getPath: i } };
    },
  };
  const more = (x) =>
    (x ? Object.entries(x).map(([k, v]) => "<br>" + esc(k) + ": " + esc(v)).join("") : "");
  const TIPS = {
    road: (o) => "<b>" + esc(o.n || o.i) + "</b>" + (o.n && o.i ? " (" + esc(o.i) + ")" : "") +
      "<br>now: " + CFG.road_states[stateAt(o.s, E.t)] +
      "<br>first closed: " + (o.c == null ? "never" : fmt(o.c)) +
      "<br>deepest water on it: " + o.d + " m" + more(o.x),
    shelter: (o) => {
      const a = CFG.anim.shelters, i = a ? last(a.times, E.t) : -1;
      return "<b>" + esc(o.name) + "</b> (shelter)<br>capacity: " + Math.round(o.cap) +
        (i >= 0 ? "<br>people now: " + Math.round(o.o[i] || 0) : "");
    },
    call: (o) => (o.t > E.t ? null : "<b>call " + esc(o.id) + "</b> at " + fmt(o.t) +
      "<br>" + esc(o.ty) + ", priority " + o.p + (o.nd ? ", needs " + esc(o.nd) : "") +
      "<br>now: " + callState(o, E.t) + "; final: " + esc(o.st) +
      (o.u ? "<br>unit: " + esc(o.u) : "")),
    stranded: (o) => (o.t > E.t ? null : "<b>stranded</b> at " + fmt(o.t) + "<br>" + esc(o.id) +
      ": " + o.n + " people" + (o.v ? ", in a vehicle" : "")),
    storm: (o) => "<b>storm track</b> at " + fmt(o.t) + "<br>central pressure " + o.p + " hPa",
    facility: (o) => "<b>" + esc(o.name) + "</b> (" + o.kind + ")" + more(o.units),
  };

  const deck = createDeck({ container: $("map"), jsonInput: JSON.parse($("deck-json").textContent),
                            tooltip: false, showError: true });
  E.deck = deck;
  const vis = {};
  for (const g of CFG.groups) for (const id of g.ids) vis[id] = g.visible;

  function show(t) {
    E.t = Math.min(Math.max(Number(t), CFG.t0), CFG.t1);
    const layers = deck.props.layers.map((l) => {
      const a = CFG.anim[l.id];
      const p = a ? ANIM[a.type](a, E.t, l.id) : {};
      p.visible = vis[l.id] !== false;
      return l.clone(p);
    });
    deck.setProps({ layers });
    $("clock").textContent = fmt(E.t);
    $("slider").value = E.t;
  }
  E.show = show;

  function setPlaying(on) {
    E.playing = on; $("play").innerHTML = on ? "&#10074;&#10074;" : "&#9654;";
    if (on) { if (E.t >= CFG.t1) show(CFG.t0); lastTs = null; requestAnimationFrame(tick); }
  }
  let lastTs = null;
  function tick(ts) {
    if (!E.playing) return;
    if (lastTs != null) {
      let t = E.t + ((ts - lastTs) / 1000) * Number($("speed").value);
      if (t >= CFG.t1) { t = CFG.t1; setPlaying(false); }
      show(t);
    }
    lastTs = ts;
    requestAnimationFrame(tick);
  }

  $("title").textContent = CFG.title;
  $("subtitle").textContent = CFG.subtitle;
  const slider = $("slider");
  slider.min = CFG.t0; slider.max = CFG.t1; slider.step = CFG.step; slider.value = CFG.t0;
  slider.addEventListener("input", () => { setPlaying(false); show(slider.value); });
  $("play").addEventListener("click", () => setPlaying(!E.playing));
  document.addEventListener("keydown", (ev) => {
    if (ev.code !== "Space" || ev.target.tagName === "INPUT") return;
    ev.preventDefault(); setPlaying(!E.playing);
  });
  for (const s of CFG.speeds) {
    const o = document.createElement("option"); o.value = s[0]; o.textContent = s[1];
    o.selected = s[0] === CFG.speed; $("speed").appendChild(o);
  }
  for (const g of CFG.groups) {
    const lab = document.createElement("label"), box = document.createElement("input");
    box.type = "checkbox"; box.checked = g.visible;
    box.addEventListener("change", () => {
      for (const id of g.ids) vis[id] = box.checked;
      show(E.t);
    });
    lab.appendChild(box); lab.appendChild(document.createTextNode(" " + g.label));
    $("layers").appendChild(lab);
    if (g.legend) {
      const d = document.createElement("div"); d.innerHTML = g.legend; $("legend").appendChild(d);
    }
  }
  $("notes").innerHTML = CFG.notes.map((n) => "&#9888; " + esc(n)).join("<br>");
  if (!deck) {
    $("errors").textContent = "the map could not be built (see the browser console)";
    return;
  }
  deck.setProps({
    getTooltip: (info) => {
      const k = info.object && info.layer && CFG.tips[info.layer.id];
      const html = k && TIPS[k] ? TIPS[k](info.object) : null;
      return html ? { html, style: { fontSize: "12px", maxWidth: "280px" } } : null;
    },
    onAfterRender: () => { E.rendered += 1; },
  });
  const done = () => { show(CFG.t0); E.ready = true; };
  Promise.all(loads).then(done, (err) => { E.errors.push("frame image: " + err); done(); });
})();
"""
