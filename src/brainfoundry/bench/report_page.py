"""The bench report as one self-contained HTML page (inline CSS, script and PNGs; works offline):
sortable tables with captions, figures, notes. Nothing is computed here; `report_data` gathers
what the page shows.

The script sorts a table when its header is clicked, and on load when the address ends in
`#sort=<table>:<column>[:desc]` (a view one can share, and the hook the browser test uses;
the table `x` is the element `table-x`); when it has run it sets `data-sortable` (how many
tables it made sortable) on `<body>`, and `data-sorted` when the address sorted one.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from ..evaluation.report_html import CSS as BASE_CSS
from ..evaluation.report_html import Section, img
from .render import fmt
from .report_data import BenchReport, Part, Table


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v))


def td(v, *, link: str | None = None, digits: int = 3) -> str:
    """One cell: the shown text, and in `data-v` the raw value the script sorts on."""
    v = v.item() if isinstance(v, np.generic) else v
    if _missing(v):
        return '<td data-v="">' + ("" if link else "–") + "</td>"
    if link is not None:
        return f'<td><a href="{html.escape(str(v))}">{html.escape(link)}</a></td>'
    if isinstance(v, bool):
        return f'<td data-v="{int(v)}">{"yes" if v else ""}</td>'
    if isinstance(v, float):
        return f'<td data-v="{v!r}">{fmt(v, digits)}</td>'
    return f"<td>{html.escape(str(v))}</td>"


def table(t: Table) -> str:
    title = f"<b>{html.escape(t.title)}.</b> {html.escape(t.caption)}"
    if t.frame.empty:
        return f'<p class="caption">{title}</p><p>(nothing yet)</p>'
    cols = [str(c) for c in t.frame.columns]
    head = "".join(
        f'<th scope="col" tabindex="0" title="sort" data-col="{html.escape(c)}">'
        f"{html.escape(c)}</th>"
        for c in cols
    )
    rows = "".join(
        "<tr>"
        + "".join(
            td(v, link=c if c in t.links else None, digits=t.digits) for c, v in zip(cols, row)
        )
        + "</tr>"
        for row in t.frame.astype(object).itertuples(index=False)
    )
    body = (
        f'<div class="scroll"><table class="sortable" id="table-{html.escape(t.id)}">'
        f"<caption>{title}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )
    if not t.folded:
        return body
    return (
        f"<details><summary>{html.escape(t.title)} ({len(t.frame)} rows)</summary>{body}</details>"
    )


def figure(s: Section) -> str:
    body = img(s.png, s.alt) if s.png is not None else f'<p class="note">{html.escape(s.note)}</p>'
    return f'<figure id="{s.id}">{body}<figcaption>{html.escape(s.heading)}</figcaption></figure>'


def part(p: Part) -> str:
    out = [f'<section id="{p.id}"><h2>{html.escape(p.heading)}</h2>']
    out += [f"<p>{html.escape(p.intro)}</p>"] if p.intro else []
    out += [table(t) for t in p.tables]
    if p.figures:
        out.append('<div class="figs">' + "".join(figure(s) for s in p.figures) + "</div>")
    out += [f'<p class="note">{html.escape(n)}</p>' for n in p.notes]
    out += [f"<pre><code>{html.escape(p.code)}</code></pre>"] if p.code else []
    return "".join(out) + "</section>"


def page(report: BenchReport) -> str:
    """The whole document."""
    nav = " · ".join(f'<a href="#{p.id}">{html.escape(p.heading)}</a>' for p in report.parts)
    head = "".join(f"<p>{html.escape(line)}</p>" for line in report.lines)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(report.title)}</h1>{head}<nav>{nav}</nav>"
        + "".join(part(p) for p in report.parts)
        + f"<script>{SORT_JS}</script></body></html>\n"
    )


CSS = BASE_CSS + (
    "body{max-width:1280px;padding:0 1em;line-height:1.4}nav{margin:1em 0 2em}"
    "table{font-size:13px}caption{text-align:left;caption-side:top;padding:4px 0;max-width:1100px}"
    "th{cursor:pointer;background:#f3f3f3;white-space:nowrap}td[data-v]{text-align:right}"
    "th[aria-sort=ascending]::after{content:' \\25B2'}"
    "th[aria-sort=descending]::after{content:' \\25BC'}tbody tr:nth-child(even){background:#fafafa}"
    ".scroll{overflow-x:auto}.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}"
    "figure{margin:0}figcaption{font-size:13px;color:#555}.note{color:#555;font-style:italic}"
    "pre{background:#f3f3f3;padding:8px;overflow-x:auto}.caption{font-size:13px}"
    "summary{cursor:pointer;margin:1em 0 .5em;font-weight:bold}"
)

SORT_JS = r"""(function () {
  "use strict";
  var NUM = /^\s*[-+]?(\d|\.\d)/;
  function key(td) {
    var v = td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent;
    return NUM.test(v) ? parseFloat(v) : v.trim().toLowerCase();
  }
  function order(a, b, desc) {
    if (a === "" || b === "") return (a === "") - (b === "");  // blanks last either way
    var na = typeof a === "number", nb = typeof b === "number";
    var c = na && nb ? a - b : na !== nb ? (na ? -1 : 1) : a < b ? -1 : a > b ? 1 : 0;
    return desc ? -c : c;
  }
  function sortBy(table, col, desc) {
    var body = table.tBodies[0], heads = table.tHead.rows[0].cells;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r, s) { return order(key(r.cells[col]), key(s.cells[col]), desc); });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute("aria-sort");
    heads[col].setAttribute("aria-sort", desc ? "descending" : "ascending");
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      function go() { sortBy(table, col, th.getAttribute("aria-sort") === "ascending"); }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); }
      });
    });
  });
  var m = /^#sort=([^:]+):(.+?)(:desc)?$/.exec(decodeURIComponent(location.hash));
  var t = m && document.getElementById("table-" + m[1]);
  if (t && t.tHead) {
    var heads = t.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].getAttribute("data-col") === m[2]) {
        sortBy(t, i, !!m[3]);
        document.body.setAttribute("data-sorted", m[1] + ":" + m[2]);
      }
    }
  }
  document.body.setAttribute("data-sortable", String(tables.length));
})();
"""
