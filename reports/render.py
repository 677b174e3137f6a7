"""Markdown and self-contained HTML renderings of the report tables.

The HTML page needs no network: CSS and JavaScript are inline, figures are ``data:`` URIs, and the
favicon is an empty data URI (so the browser does not request one). Tables with class ``sortable``
sort by clicking a header (numbers numerically, blanks last); ``#sort=<table id>:<column>:<asc|desc>``
in the address sorts on load. A broken image is outlined and counted in a warning banner.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports.metric_info import SUBSTITUTE_NOTE
from reports.published import REPORTED_KIND
from reports.tables import Column, cell_text, fmt

KIND_BADGE = {"oracle": "oracle", "floor": "floor", "submission": "submission", REPORTED_KIND: "reported, not reproduced"}


@dataclass
class Figure:
    anchor: str
    title: str
    png: bytes
    caption: str = ""
    filename: str = ""


@dataclass
class Section:
    anchor: str
    title: str
    body: str
    subsections: list[Section] = field(default_factory=list)


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def columns_present(frame: pd.DataFrame, columns: Sequence[Column]) -> list[Column]:
    """Columns with a value — or a reason for none ("N < min") — in some row of ``frame``."""
    def shown(c: Column) -> bool:
        status = frame.get(f"{c.label} status")
        flagged = status is not None and status.fillna("").ne("").any() and status.fillna("ok").ne("ok").any()
        return c.label in frame.columns and (frame[c.label].notna().any() or flagged)

    return [c for c in columns if shown(c)]


def method_cell(method: str, kind: str) -> str:
    badge = KIND_BADGE.get(kind)
    tag = f' <span class="badge {esc(kind.split(",")[0])}">{esc(badge)}</span>' if badge else ""
    return f"{esc(method)}{tag}"


# --- Markdown -----------------------------------------------------------------------------------------
def _md_escape(text: str) -> str:
    """Text for a Markdown cell: HTML is shown, never rendered (a method name can hold anything).

    Only what could open a tag or an entity is escaped, so "N < min" stays readable as plain text.
    """
    text = re.sub(r"&(?=#?\w+;)", "&amp;", str(text))
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def leaderboard_markdown(wide: pd.DataFrame, columns: Sequence[Column], notes: Sequence[str], title: str) -> str:
    out = [f"# {title}", ""]
    out += [f"- {_md_escape(n)}" for n in notes]
    for dataset, d in wide.groupby("dataset", sort=False):
        cols = columns_present(d, columns)
        out += ["", f"## {_md_escape(dataset)}", ""]
        header = ["protocol", "method", "kind", *[c.label for c in cols]]
        rows = [[r["protocol"], r["method"], r["kind"], *[cell_text(r, c, markdown=True) for c in cols]]
                for _, r in d.iterrows()]
        out.append(markdown_table(header, rows))
    return "\n".join(out) + "\n"


# --- HTML pieces --------------------------------------------------------------------------------------
def _sort_value(x) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return ""
    return repr(float(x)) if isinstance(x, (int, float, np.number)) else str(x)


def html_table(table_id: str, header: Sequence[str], rows: Sequence[Sequence[tuple[str, str]]],
               row_classes: Sequence[str] | None = None, caption: str = "") -> str:
    """``rows``: per cell (inner HTML, sort key). Sortable by clicking a header."""
    parts = [f'<div class="tablewrap"><table class="sortable" id="{esc(table_id)}">']
    if caption:
        parts.append(f"<caption>{caption}</caption>")
    parts.append("<thead><tr>" + "".join(f'<th scope="col" title="click to sort">{esc(h)}</th>' for h in header)
                 + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td data-sort="{esc(key)}">{inner}</td>' for inner, key in row)
        parts.append(f"<tr{cls}>{cells}</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def _row_class(kind: str) -> str:
    return {"oracle": "oracle", "floor": "floor", "submission": "submission", REPORTED_KIND: "reported"}.get(kind, "")


def leaderboard_html(wide: pd.DataFrame, columns: Sequence[Column], sources: dict[tuple, str]) -> str:
    parts = []
    for n, (dataset, d) in enumerate(wide.groupby("dataset", sort=False)):
        cols = columns_present(d, columns)
        header = ["protocol", "method", *[c.label for c in cols]]
        rows, classes = [], []
        for _, r in d.iterrows():
            cells = [(esc(r["protocol"]), r["protocol"])]
            method = method_cell(r["method"], r["kind"])
            src = sources.get((r["dataset"], r["protocol"], r["method"]))
            if src:
                method += f'<div class="source">{esc(src)}</div>'
            cells.append((method, r["method"]))
            for c in cols:
                mean = r[c.label]
                status = r.get(f"{c.label} status", "")
                if isinstance(status, str) and status not in ("", "ok"):
                    cells.append((f'<span class="na" title="too few trials for this metric">'
                                  f"{esc(cell_text(r, c))}</span>", ""))
                    continue
                if pd.isna(mean):
                    cells.append(("", ""))
                    continue
                text = f'<span class="mean">{fmt(mean)}</span>'
                if pd.notna(r[f"{c.label} ci_low"]):
                    text += f' <span class="ci">[{fmt(r[f"{c.label} ci_low"])}, {fmt(r[f"{c.label} ci_high"])}]</span>'
                if c.set_level and pd.notna(r.get(f"{c.label} n")) and r.get(f"{c.label} n"):
                    text += f' <span class="ci">N={int(r[f"{c.label} n"])}</span>'
                mark = r[f"{c.label} mark"]
                p = r[f"{c.label} p_vs_best"]
                if mark == "best":
                    text = f'<strong title="best non-oracle method, significantly ahead of the runner-up (Holm)">{text}</strong>'
                elif mark == "†":
                    text += f' <span class="dagger" title="differs from the best, Holm-adjusted p = {p:.3g} (paired over trials)">†</span>'
                elif pd.notna(p):
                    text = f'<span title="vs best: Holm-adjusted p = {p:.3g} (paired over trials)">{text}</span>'
                cells.append((text, _sort_value(mean)))
            rows.append(cells)
            classes.append(_row_class(r["kind"]))
        parts.append(f"<h3>{esc(dataset)}</h3>")
        parts.append(html_table(f"leaderboard-{n}", header, rows, classes))
    return "".join(parts)


def frame_html(table_id: str, frame: pd.DataFrame, kind_column: str | None = "kind",
               hide: Sequence[str] = ()) -> str:
    """A plain sortable table of a DataFrame (floats formatted, kinds as badges)."""
    shown = [c for c in frame.columns if c not in hide and c != kind_column]
    rows, classes = [], []
    for _, r in frame.iterrows():
        cells = []
        for c in shown:
            v = r[c]
            if c == "method" and kind_column in frame.columns:
                cells.append((method_cell(v, r[kind_column]), str(v)))
            elif isinstance(v, (float, np.floating)):
                cells.append((fmt(v) if np.isfinite(v) else "", _sort_value(v)))
            else:
                cells.append((esc(v), _sort_value(v)))
        rows.append(cells)
        classes.append(_row_class(r[kind_column]) if kind_column in frame.columns else "")
    return html_table(table_id, shown, rows, classes)


def figure_html(fig: Figure) -> str:
    cap = f"<figcaption>{esc(fig.caption)}</figcaption>" if fig.caption else ""
    return (f'<figure id="{esc(fig.anchor)}"><img src="{data_uri(fig.png)}" alt="{esc(fig.title)}"'
            f' title="{esc(fig.filename)}">{cap}</figure>')


def definition_table(table_id: str, pairs: Sequence[tuple[str, str]], header=("name", "value")) -> str:
    rows = [[(esc(k), k), (f"<code>{esc(v)}</code>", v)] for k, v in pairs]
    return html_table(table_id, header, rows)


STYLE = """
:root{--fg:#1d2327;--muted:#5f6b76;--line:#d5dbe1;--head:#eef2f6;--accent:#1f5fa8}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);
 margin:0 auto;max-width:1500px;padding:1.2rem 1.6rem 3rem;background:#fff}
h1{font-size:1.6rem;margin:.2rem 0 .4rem}h2{font-size:1.25rem;margin:2rem 0 .5rem;border-bottom:2px solid var(--line)}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}nav a{margin-right:1rem;color:var(--accent)}
.meta,.note,figcaption,.source{color:var(--muted);font-size:.85rem}
ul.notes{margin:.3rem 0 .8rem 1.1rem;padding:0;color:var(--muted);font-size:.88rem}
.tablewrap{overflow-x:auto}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.85rem}
th,td{border:1px solid var(--line);padding:.28rem .5rem;text-align:left;vertical-align:top}
th{background:var(--head);cursor:pointer;position:sticky;top:0;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
td .ci{color:var(--muted);font-size:.8em;white-space:nowrap}
tr.oracle td{background:#f3f7ff}tr.floor td{background:#fbf7ef}tr.reported td{font-style:italic;background:#f6f6f6}
.badge{display:inline-block;font-size:.7rem;padding:0 .35rem;border-radius:.6rem;background:#dde3ea;color:#333;
 font-style:normal;margin-left:.25rem}
.badge.oracle{background:#cfe0ff}.badge.floor{background:#f3e2bf}.badge.reported{background:#e2e2e2}
.dagger{color:#b3261e;font-weight:bold}
figure{margin:.8rem 0 1.4rem}figure img{max-width:100%;height:auto;border:1px solid var(--line)}
img.broken{outline:3px solid #b3261e;min-width:40px;min-height:40px}
#image-warning{display:none;background:#fde7e7;border:1px solid #b3261e;padding:.4rem .6rem}
code{font-size:.8rem;word-break:break-all}
footer{margin-top:2.5rem;border-top:2px solid var(--line)}
"""

SCRIPT = r"""
(function () {
  "use strict";
  function key(td) {
    var v = td.getAttribute("data-sort");
    if (v === null) { v = td.textContent.trim(); }
    if (v === "") { return null; }
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
      if (typeof x !== typeof y) { return typeof x === "number" ? -1 : 1; }
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === col) { th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending"); }
      else { th.removeAttribute("aria-sort"); }
    });
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.addEventListener("click", function () {
        sortTable(table, i, th.getAttribute("aria-sort") === "ascending" ? -1 : 1);
      });
    });
  });
  var m = /sort=([\w-]+):(\d+):(asc|desc)/.exec(window.location.hash);
  if (m) {
    var t = document.getElementById(m[1]);
    if (t) { sortTable(t, Number(m[2]), m[3] === "asc" ? 1 : -1); }
  }
  document.body.setAttribute("data-sortable-tables", String(tables.length));
  function checkImages() {
    var imgs = document.images, bad = 0;
    for (var i = 0; i < imgs.length; i++) {
      if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) { bad++; imgs[i].classList.add("broken"); }
    }
    document.body.setAttribute("data-images-loaded", (imgs.length - bad) + "/" + imgs.length);
    if (bad) {
      var w = document.getElementById("image-warning");
      w.textContent = bad + " of " + imgs.length + " images failed to load.";
      w.style.display = "block";
    }
  }
  if (document.readyState === "complete") { checkImages(); } else { window.addEventListener("load", checkImages); }
})();
"""


def page(title: str, meta: str, notes: Sequence[str], sections: Sequence[Section], footer: str) -> str:
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    body = []
    for s in sections:
        body.append(f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>{s.body}')
        for sub in s.subsections:
            body.append(f'<section id="{esc(sub.anchor)}"><h3>{esc(sub.title)}</h3>{sub.body}</section>')
        body.append("</section>")
    note_list = "<ul class=\"notes\">" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>" if notes else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{STYLE}</style></head>'
        f'<body><header><h1>{esc(title)}</h1><p class="meta">{meta}</p><nav>{nav}</nav>'
        f'<div id="image-warning" role="alert"></div>{note_list}</header>'
        f'{"".join(body)}<footer id="provenance"><h2>Provenance</h2>{footer}</footer>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


SUBSTITUTE_HTML = f'<span class="badge">substitute</span> {esc(SUBSTITUTE_NOTE)}'
