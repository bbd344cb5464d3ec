"""The report page as HTML: metric table, figure sections, details; nothing is computed here.

`report.write_report` collects the numbers and figures; this module only lays them out, so the
page's look can change without touching what it reports (and vice versa).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """One figure section: a PNG, or a note saying why there is none."""

    id: str
    heading: str
    png: bytes | None = None
    alt: str = ""
    note: str = ""


def ci_level(summary: dict) -> int:
    """The CI level in percent, from `summarize`'s `alpha`."""
    return round(100 * (1 - summary.get("alpha", 0.05)))


def img(png: bytes, alt: str) -> str:
    """An `<img>` with the PNG inline, so the page stands alone."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'


def metrics_table(summary: dict) -> str:
    rows = []
    for name, m in summary.get("metrics", {}).items():
        cells = [m.get("estimate"), m.get("lo"), m.get("hi")]
        shown = ["n/a" if v is None else f"{v:.4g}" for v in cells]
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{shown[0]}</td>"
            f"<td>{shown[1]} – {shown[2]}</td></tr>"
        )
    head = f"<tr><th>metric</th><th>estimate</th><th>{ci_level(summary)}% CI</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def details_table(items: Mapping) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def method_note(summary: dict, n_cases: int) -> str:
    """How the intervals were made; `n_cases` is shown if the summary lacks it."""
    return (
        f"{summary.get('n_cases', n_cases)} cases. Intervals are {ci_level(summary)}% percentile "
        f"bootstrap CIs over {summary.get('resampling', 'cases')} ({summary.get('n_boot')} "
        f"resamples, seed {summary.get('seed')})."
    )


def section(s: Section) -> str:
    content = img(s.png, s.alt) if s.png is not None else f"<p>{html.escape(s.note)}</p>"
    return f'<section id="{s.id}"><h2>{html.escape(s.heading)}</h2>{content}</section>'


def page(
    title: str,
    summary: dict,
    n_cases: int,
    sections: list[Section],
    details: Mapping | None = None,
) -> str:
    """The whole self-contained document: title, metrics, `sections` in order, details."""
    body = [
        f"<h1>{html.escape(title)}</h1>",
        '<section id="metrics"><h2>Metrics</h2>',
        metrics_table(summary),
        f"<p>{html.escape(method_note(summary, n_cases))}</p></section>",
    ]
    body += [section(s) for s in sections]
    if details:
        body.append(f'<section id="details"><h2>Details</h2>{details_table(details)}</section>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


CSS = (
    "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px}"
    "img{max-width:100%}section{margin-bottom:2em}"
)
