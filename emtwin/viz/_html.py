"""Small HTML helpers shared by the run report and the comparison report."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from typing import Any

from emtwin.sim.components import declared_metrics

__all__ = [
    "PAGE_CSS",
    "esc",
    "page",
    "table",
    "img",
    "fmt_value",
    "fmt_duration",
    "data_value",
    "HEADLINES",
]

PAGE_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; max-width: 1100px;
       margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px;
  border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.sub { color: #555; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f4f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.none { color: #999; }
figure { display: inline-block; width: calc(50% - 14px); margin: 8px 10px 8px 0;
         vertical-align: top; }
figure img { width: 100%; border: 1px solid #eee; } figure.wide { width: 100%; }
figcaption { font-size: 12px; color: #555; }
.headlines { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.headlines table { margin: 0; }
a.button { display: inline-block; background: #1f5fa8; color: white; padding: 6px 14px;
           border-radius: 4px; text-decoration: none; margin: 6px 0; }
.note { color: #8a4b00; font-size: 12.5px; }
"""

#: Headline keys of summary.json by section: (key, label, unit), from the metrics the
#: components declare (:mod:`emtwin.sim.metric`). Durations have unit "s".
HEADLINES: dict[str, list[tuple[str, str, str]]] = {
    section: [(m.key, m.label, m.unit) for m in metrics if m.headline]
    for section, metrics in declared_metrics().items()
}


def esc(x: Any) -> str:
    """HTML-escaped text of *x*."""
    return html.escape("" if x is None else str(x), quote=True)


def fmt_duration(s: float) -> str:
    """Seconds as ``h:mm:ss`` (e.g. 5400 -> 1:30:00)."""
    t = int(round(s))
    h, rem = divmod(abs(t), 3600)
    return f"{'-' if t < 0 else ''}{h}:{rem // 60:02d}:{rem % 60:02d}"


def fmt_value(v: Any, unit: str = "") -> str:
    """A headline value for people: thousands separators, durations as h:mm:ss, units."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, dict):
        return ", ".join(f"{esc(k)}: {fmt_value(x, unit)}" for k, x in v.items()) or "–"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return esc(v)
    if unit == "s":
        return f"{fmt_duration(v)} ({v:,.0f} s)"
    if unit == "share":
        return f"{100 * v:.1f} %"
    if isinstance(v, int) or float(v).is_integer() and abs(v) >= 1:
        text = f"{v:,.0f}"
    elif abs(v) >= 100:
        text = f"{v:,.1f}"
    elif v != 0 and abs(v) < 1e-3:
        text = f"{v:.3g}"
    else:
        text = f"{v:.4g}"
    return f"{text} {esc(unit)}".strip()


def data_value(v: Any) -> str:
    """The exact value as JSON, for a ``data-value`` attribute (tests read it back)."""
    if isinstance(v, float) and not math.isfinite(v):
        v = None
    return esc(json.dumps(v, sort_keys=True, allow_nan=False))


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric: Sequence[bool] = ()
) -> str:
    """An HTML table; cells are escaped unless given as ``("html", text)``."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            cls = ' class="num"' if i < len(numeric) and numeric[i] else ""
            text = c[1] if isinstance(c, tuple) and c and c[0] == "html" else esc(c)
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def img(png: bytes, alt: str, *, name: str = "", wide: bool = False) -> str:
    """A figure with the PNG embedded as base64 (the page stays self-contained)."""
    b64 = base64.b64encode(png).decode("ascii")
    cls = ' class="wide"' if wide else ""
    return (
        f'<figure{cls} data-chart="{esc(name)}"><img alt="{esc(alt)}" '
        f'src="data:image/png;base64,{b64}"><figcaption>{esc(alt)}</figcaption></figure>'
    )


def page(title: str, body: str) -> str:
    """A whole standalone HTML page."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{esc(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")  # fmt: skip
