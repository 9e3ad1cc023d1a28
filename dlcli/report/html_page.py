"""The report page's frame: its style, the script that draws the charts and sorts and filters the run
table, and the function that puts sections and data into one self-contained HTML document (plotly.js
inline, no request leaves the page)."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from dlcli.analysis.compare import sort_key

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 2rem 3rem; color: #222; }
h1 { font-size: 1.4rem; margin: 1.2rem 0 0.3rem; } h2 { font-size: 1.15rem; margin: 2rem 0 0.4rem; }
nav a { margin-right: 1rem; font-size: 0.9rem; } .muted { color: #666; font-size: 0.85rem; }
.chart { min-height: 440px; } details { font-size: 0.85rem; margin: 0.4rem 0; }
table { border-collapse: collapse; font-size: 0.85rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; user-select: none; }
th.sorted-ascending::after { content: " ▲"; } th.sorted-descending::after { content: " ▼"; }
td.text, th.text { text-align: left; } tr.failed td { color: #b00020; } tr.failed td.status { font-weight: 600; }
tr.pruned td { color: #777; } tr.chosen td { font-weight: 600; background: #eef7ee; }
.scroll { max-height: 32rem; overflow: auto; border: 1px solid #ddd; display: inline-block; max-width: 100%; }
#runs-filter { width: 28rem; max-width: 100%; padding: 0.3rem; margin: 0.3rem 0; }
"""

SCRIPT = """
(function () {
  "use strict";
  function compareKeys(a, b) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i] < b[i]) return -1;
      if (a[i] > b[i]) return 1;
    }
    return a.length - b.length;
  }
  function setUpTable() {
    const source = document.getElementById("runs-data");
    if (!source) return;
    const data = JSON.parse(source.textContent);
    const body = document.querySelector("#runs-table tbody");
    const headers = document.querySelectorAll("#runs-table th");
    const filter = document.getElementById("runs-filter");
    const count = document.getElementById("runs-count");
    let order = data.rows.map(function (_, i) { return i; });
    function render() {
      const terms = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
      body.textContent = "";
      let shown = 0;
      order.forEach(function (i) {
        const row = data.rows[i];
        if (!terms.every(function (term) { return row.search.indexOf(term) >= 0; })) return;
        const tr = document.createElement("tr");
        tr.className = row.className !== undefined ? row.className : (row.failed ? "failed" : "");
        row.cells.forEach(function (cell, c) {
          const td = document.createElement("td");
          td.textContent = cell;
          td.className = data.columns[c].kind + (data.columns[c].name === "status" ? " status" : "");
          tr.appendChild(td);
        });
        body.appendChild(tr);
        shown++;
      });
      count.textContent = shown + " of " + data.rows.length + " rows";
    }
    headers.forEach(function (th, c) {
      th.addEventListener("click", function () {
        const descending = th.classList.contains("sorted-ascending");
        headers.forEach(function (other) { other.classList.remove("sorted-ascending", "sorted-descending"); });
        th.classList.add(descending ? "sorted-descending" : "sorted-ascending");
        order.sort(function (a, b) {
          const ka = data.rows[a].sort[c], kb = data.rows[b].sort[c];
          const failed = (data.rows[a].failed ? 1 : 0) - (data.rows[b].failed ? 1 : 0);
          if (failed !== 0) return failed;  /* runs that did not complete stay at the bottom */
          if (ka[0] !== kb[0]) return ka[0] - kb[0];  /* missing values last, either way */
          const sign = compareKeys(ka, kb);
          return descending ? -sign : sign;
        });
        render();
      });
    });
    filter.addEventListener("input", render);
    render();
  }
  function drawCharts() {
    const drawn = [];
    document.querySelectorAll("script[data-figure]").forEach(function (source) {
      const figure = JSON.parse(source.textContent);
      const target = document.getElementById(source.getAttribute("data-figure"));
      drawn.push(Plotly.newPlot(target, figure.data, figure.layout, {responsive: true, displaylogo: false})
        .then(function () { target.setAttribute("data-drawn", "true"); }));
    });
    return Promise.all(drawn);
  }
  setUpTable();
  drawCharts().then(function () {
    document.body.setAttribute("data-ready", "true");
  }, function (error) { console.error("a chart could not be drawn: " + error); });
})();
"""


@dataclass
class Section:
    """One part of the page: a heading, HTML above the chart, and the chart's plotly JSON (if any)."""

    anchor: str
    title: str
    body: str = ""
    figure_json: str | None = None


def note_html(text: str) -> str:
    return f'<p class="muted">{html.escape(text)}</p>'


def cell_sort_key(value: Any) -> list:
    """A table cell's sort key as the page's script reads it: compare's [rank, number, text]."""
    rank, number, text = sort_key(value.item() if hasattr(value, "item") else value)
    return [rank, number, text]


def json_script(element_id: str, payload: str, attributes: str = "") -> str:
    """JSON inside a <script> element: `</` escaped so the data cannot close it."""
    text = payload.replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}" {attributes}>{text}</script>'


def table_html(table: dict[str, Any]) -> str:
    """The run table's frame (filled and sorted in the browser) and its data."""
    headers = "".join(f'<th class="{column["kind"]}" title="click to sort">{html.escape(column["name"])}</th>'
                      for column in table["columns"])
    return ('<input id="runs-filter" type="search" placeholder="filter rows: every word must appear, '
            'e.g. lr=0.1 completed">\n<div class="scroll"><table id="runs-table"><thead><tr>' + headers +
            '</tr></thead><tbody></tbody></table></div>\n<p id="runs-count" class="muted"></p>\n' +
            json_script("runs-data", json.dumps(table, allow_nan=False)))


def page(title: str, header: str, sections: list[Section], plotly_js: str) -> str:
    """The whole document."""
    nav = " ".join(f'<a href="#{section.anchor}">{html.escape(section.title)}</a>' for section in sections)
    parts = []
    for section in sections:
        parts.append(f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2>\n{section.body}')
        if section.figure_json is not None:
            chart = f"chart-{section.anchor}"
            parts.append(f'<div class="chart" id="{chart}"></div>\n'
                         + json_script(f"figure-{section.anchor}", section.figure_json, f'data-figure="{chart}"'))
        parts.append("</section>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style>",
        f'<script type="text/javascript">{plotly_js}</script>', "</head><body>",
        f"<h1>{html.escape(title)}</h1>", header, f"<nav>{nav}</nav>", *parts,
        f"<script>{SCRIPT}</script>", "</body></html>", ""])
