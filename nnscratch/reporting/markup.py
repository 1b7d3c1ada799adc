"""The HTML of the report pages (a run's and a sweep's): the page itself, with its
Content-Security-Policy and inline CSS, and the tables and cells it is made of.
Everything shown is escaped here."""

from __future__ import annotations

import html
import json

import numpy as np

PHONE_SCREEN = "(max-width: 600px)"


# ----- the page -------------------------------------------------------------------------
CSS = """
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a;
  margin: 0 auto; max-width: 1400px; padding: 1.5em 2em 3em; background: #f6f7f9; }
h1 { margin: 0 0 .2em; font-size: 1.8em; }
h2 { margin: 1.6em 0 .6em; border-bottom: 2px solid #d5dae1; padding-bottom: .2em; }
h3 { margin: 0 0 .5em; font-size: 1.05em; }
table + h3, pre + h3 { margin-top: 1.2em; }
.stack { display: flex; flex-direction: column; gap: 1.2em; }
.sub { color: #555; margin: 0 0 1.2em; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; }
.card { background: white; border: 1px solid #d5dae1; border-radius: 8px;
  padding: .7em 1.2em; min-width: 10em; }
.card .value { font-size: 1.7em; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .label { color: #555; font-size: .9em; }
/* side by side where two fit (their figures are drawn 6.5 in wide), else one column */
.grid { display: grid; gap: 1.2em; align-items: start;
  grid-template-columns: repeat(auto-fit, minmax(min(100%, 560px), 1fr)); }
.panel, figure { background: white; border: 1px solid #d5dae1; border-radius: 8px;
  padding: 1em; margin: 0; overflow-x: auto; }
figure a.picture { display: block; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: #444; margin-top: .5em; font-size: .93em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #e1e5ea; padding: .25em .7em; text-align: left; }
thead th { background: #eef2f6; }
tbody th { font-weight: 600; background: #fafbfc; white-space: nowrap; }
td.num { text-align: right; }
code, pre { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
pre { margin: 0; }
/* a phone: the figures get the whole width (a tap opens one full size); those
   with small text keep their size and scroll sideways (SCROLL_ON_PHONE) */
@media PHONE_SCREEN {
  body { padding: 1em .5em 2em; }
  .panel, figure { padding: .5em; }
  h1 { font-size: 1.5em; }
  figure.scroll img { max-width: none; }
}
""".replace("PHONE_SCREEN", PHONE_SCREEN)
# The page may only use what it carries: no scripts, no fetches, images from data URIs.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def escape(value) -> str:
    return html.escape(str(value))


def html_cell(value) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    return f"<td><code>{escape(value)}</code></td>"


def html_table(head: list[str], rows: list[list[str]]) -> str:
    """rows hold ready-made cells (<td>/<th> strings); head is escaped here."""
    thead = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>"


def key_value_table(items) -> str:
    return html_table(
        ["setting", "value"],
        [[f"<th>{escape(k)}</th>", html_cell(v)] for k, v in items],
    )


def percent_cell(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{value:.2%}</td>'
    return "<td></td>"


def number_cell(key: str, value) -> str:
    """A metric's cell, as the cards and `nnscratch evaluate` show it: accuracies as
    percentages, lr to 3 significant digits, seconds to 2 decimals, losses to 4;
    other values (and NaN or infinity) as `html_cell` shows them."""
    if not isinstance(value, float) or not np.isfinite(value):
        return html_cell(value)
    if "accuracy" in key:
        return percent_cell(value)
    if key == "lr":
        return f'<td class="num">{value:.3g}</td>'
    if key.endswith("seconds"):
        return f'<td class="num">{value:.2f}</td>'
    if key.endswith("loss"):
        return f'<td class="num">{value:.4f}</td>'
    return html_cell(value)


def html_page(title: str, body: list[str]) -> str:
    """The whole HTML document: head (CSP, inline CSS) and the non-empty body pieces,
    one a line."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no favicon request to the disk
        f"<title>{escape(title)}</title>\n<style>{CSS}</style></head>\n<body>\n"
        + "\n".join(piece for piece in body if piece)
        + "\n</body></html>\n"
    )
