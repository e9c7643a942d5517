"""The forecast view of the drill page: the *Run forecast* button, the fan charts per gauge
and the risk map (the probability that the depth passes 0.3 m) over the map's layers.

:func:`risk_layer` is the (empty) deck.gl layer the page draws the risk map in, just
above the water; :func:`html` is the style and script that add the forecast panel to
the page (exercise control only). The script watches the forecast's state in the
websocket messages (``forecast``), fetches ``GET /api/forecast/{id}`` once it is
done, and hooks the risk image into the map (``window.emtwin.hooks``).
"""

from __future__ import annotations

from typing import Any

import pydeck as pdk

__all__ = ["risk_layer", "html", "RISK_LAYER"]

#: The id of the risk map's layer on the page.
RISK_LAYER = "forecast-risk"


def risk_layer(session: Any, blank_png: str) -> Any:
    """The layer the risk map is drawn in: empty (and hidden) until a forecast is shown."""
    nearest = {"minFilter": "nearest", "magFilter": "nearest"}
    return pdk.Layer("BitmapLayer", id=RISK_LAYER, image=pdk.types.String(blank_png),
                     bounds=session.feed.water_bounds(), visible=False, opacity=0.85,
                     texture_parameters=nearest)  # fmt: skip


def html() -> str:
    """The forecast panel's style and script (placed after the page's own script)."""
    return f"<style>{CSS}</style>\n<script>{SCRIPT}</script>\n"


CSS = """
#forecast img { width: 100%; display: block; margin: 4px 0; cursor: zoom-in; }
#forecast table { border-collapse: collapse; font-size: 12px; }
#forecast td, #forecast th { border: 1px solid #ddd; padding: 1px 4px; }
.ramp { height: 10px; width: 140px; display: inline-block; vertical-align: middle;
        background: linear-gradient(to right, #ffffcc, #fed976, #fd8d3c, #e31a1c, #800026); }
"""

SCRIPT = r"""
(function () {
  "use strict";
  const E = window.emtwin;
  const $ = (id) => document.getElementById(id);
  const TOKEN = new URLSearchParams(location.search).get("token") || "";
  const pad = (n) => String(n).padStart(2, "0");
  const fmt = (t) => { t = Math.round(t); return "T+" + Math.floor(t / 3600) + ":" +
    pad(Math.floor((t % 3600) / 60)); };
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const box = document.createElement("div");
  box.className = "control-only";
  box.innerHTML = "<h2>Forecast from now (control)</h2>" +
    '<div class="row"><label>members</label><input id="fc-members" type="number" value="8" ' +
    'min="2" max="64" style="width:50px"><label>hours</label><input id="fc-hours" ' +
    'type="number" value="2" min="0.25" step="0.25" style="width:55px"></div>' +
    '<div class="row"><button id="fc-run">Run forecast</button><label class="sw">' +
    '<input type="checkbox" id="fc-show" checked>risk map on the map</label></div>' +
    '<div id="forecast"></div>';
  const right = $("right");
  const before = [...right.querySelectorAll("h2")].find((h) => h.textContent === "Decisions");
  right.insertBefore(box, before || null);
  E.forecast = null;
  let loaded = null, loading = null;
  E.hooks["forecast-risk"] = (l) => {
    const r = E.forecast && E.forecast["prob_depth_0.3m"];
    if (!r) return l;
    return l.clone({ image: r.image, bounds: r.bounds, visible: $("fc-show").checked });
  };
  $("fc-show").addEventListener("change", () => E.draw());
  $("fc-run").addEventListener("click", async () => {
    const body = { members: Number($("fc-members").value),
                   horizon: Math.round(Number($("fc-hours").value) * 3600) };
    $("forecast").innerHTML = "starting...";
    try {
      const r = await fetch("/api/forecast", { method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + TOKEN } });
      const j = await r.json();
      if (!r.ok) throw new Error(typeof j.detail === "string" ? j.detail
        : JSON.stringify(j.detail));
      E.forecastAsked = performance.now();
    } catch (e) { $("forecast").innerHTML = '<span class="err">' + esc(e.message) + "</span>"; }
  });
  function show(f) {
    const r = f["prob_depth_0.3m"];
    const km2 = (r.cells_over_half * r.cell_area_m2 / 1e6).toFixed(2);
    const roads = (f.roads || []).slice(0, 6).map((x) => "<tr><td>" + esc(x.road_id) +
      "</td><td>" + Math.round(100 * x.p_closed) + " %</td><td>" +
      (x.median_closure_s == null ? "" : fmt(x.median_closure_s)) + "</td></tr>").join("");
    const fans = Object.entries(f.fan_charts).map(([g, uri]) => '<img alt="fan chart ' +
      esc(g) + '" title="' + esc(g) + ': 5-95 % band and median" src="' + uri + '">').join("");
    $("forecast").innerHTML = "<div class='sub'>" + fmt(f.at_s) + " to " + fmt(f.to_s) + ", " +
      f.members + " members (drawn: " + esc(f.varied.join(", ")) + "), computed in " +
      Math.round(f.wall_s) + " s</div>" +
      "<div class='sw'>P(depth &ge; 0.3 m) 0 <span class='ramp'></span> 1</div>" +
      "<div class='sub'>highest " + Math.round(100 * (r.max || 0)) + " %; " + km2 +
      " km&sup2; at 50 % or more</div>" + (roads ? "<b>Roads open now that may close</b><table>" +
      "<tr><th>road</th><th>P</th><th>median</th></tr>" + roads + "</table>" : "") +
      "<b>Gauges (level)</b>" + fans + '<a href="' + esc(f.report) +
      '" target="_blank">the forecast page</a>';
    for (const img of $("forecast").querySelectorAll("img"))
      img.addEventListener("click", () => window.open(img.src, "_blank"));
  }
  E.onForecast = (b) => {
    if (!b) return;
    if (b.state === "running") {
      $("forecast").innerHTML = "running " + fmt(b.at_s) + " to " + fmt(b.to_s) + ": " +
        b.done + " of " + b.members + " members...";
    } else if (b.state === "failed") {
      $("forecast").innerHTML = '<span class="err">' + esc(b.error) + "</span>";
    } else if (b.state === "done" && b.id !== loaded && b.id !== loading) {
      loading = b.id;
      fetch("/api/forecast/" + b.id).then((r) => r.json()).then((f) => {
        E.forecast = f; loaded = f.id; loading = null;
        show(f); E.draw();
        if (E.forecastAsked) E.forecastShownAfter = performance.now() - E.forecastAsked;
      }).catch((e) => { loading = null; E.errors.push(String(e)); });
    }
  };
})();
"""
