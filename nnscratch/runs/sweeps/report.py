"""report.html of a sweep: the best settings, every trial, and the pictures that
answer "which settings matter": the optimisation history, each parameter against
the score, the parameters' importances and parallel coordinates.

Same style and guarantees as a run's report (`reporting.page`): one self-contained
page, images embedded as base64 PNGs, no scripts, each picture's text alternative
saying what it draws with the sweep's numbers. A picture that needs more finished
trials than there are says so instead.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from ...files import write_text
from ...reporting.figures import (
    BLUE,
    ORANGE,
    TEXT,
    chart_text,
    new_figure,
    png_bytes,
    whole_epochs,
)
from ...reporting.markup import (
    escape,
    html_cell,
    html_page,
    html_table,
    key_value_table,
)
from ...reporting.page import picture

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATE_COLOURS = {"complete": BLUE, "pruned": ORANGE, "fail": "#999999"}
# any other Optuna state: a trial left running by a sweep that died (its last epoch's
# score), one of a newer Optuna...
OTHER_COLOUR = "#444444"
# The page shows the pictures two side by side: each is drawn that wide (in inches,
# 96 CSS pixels each), so its text is shown at its size, not shrunk.
WIDTH = 6.5


def write_sweep_report(path, study, rows: list[dict], names: list[str], test_accuracy):
    """Write the page to `path` (atomically); returns the path."""
    scored = [r for r in rows if r["val_accuracy"] != ""]
    complete = [r for r in rows if r["state"] == "complete"]
    body = [f"<h1>Sweep: {escape(study.study_name)}</h1>", _summary(study, rows)]
    best = None
    if complete:  # the first of the highest: rows are in the trials' order
        best = max(complete, key=lambda r: r["val_accuracy"])
        items = [(n, best[n]) for n in names] + [
            ("trial", best["number"]),
            ("validation accuracy", f"{best['val_accuracy']:.4f}"),
            ("test accuracy (best trial only)",
             "" if test_accuracy is None else f"{test_accuracy:.4f}"),
            ("run directory", "best/ (a copy of " + best["run_dir"] + ")"),
        ]  # fmt: skip
        body.append(f"<h2>Best settings</h2>{key_value_table(items)}")
    found = _importances(study, names)
    figures = [
        ("Optimisation history: each trial's validation accuracy, and the best so far",
         _draw(_history, scored)),
        ("Each parameter against the validation accuracy",
         _draw(_slices, scored, names)),
        ("Parameter importances (PED-ANOVA over the completed trials)",
         found if isinstance(found, str) else _draw(_importance_bars, found)),
        ("Parallel coordinates: each line a trial, coloured by validation accuracy",
         _draw(_parallel, scored, names)),
    ]  # fmt: skip
    alts = _alt_texts(scored, names, found, best)
    body.append('<h2>Pictures</h2><div class="grid">')
    body += [_figure(*figure, alt) for figure, alt in zip(figures, alts)]
    body.append("</div>")
    body.append(f'<h2>Trials</h2><div class="panel">{_trials_table(rows)}</div>')
    write_text(path, html_page(f"Sweep {study.study_name}", body))
    return path


# Optuna's state names as the sweep's progress line words them
STATE_WORDS = {"complete": "complete", "pruned": "pruned", "fail": "failed",
               "running": "running"}  # fmt: skip


def _summary(study, rows: list[dict]) -> str:
    """'3 trials: 2 complete, 1 failed': only the states that occurred."""
    states = [r["state"] for r in rows]
    seen = [s for s in STATE_WORDS if s in states]
    seen += sorted(set(states) - set(STATE_WORDS))  # "waiting", as Optuna names it
    parts = [f"{states.count(s)} {STATE_WORDS.get(s, s)}" for s in seen]
    trials = "1 trial" if len(rows) == 1 else f"{len(rows)} trials"
    return f'<p class="sub">{trials}: {escape(", ".join(parts))}</p>'


def _trials_table(rows: list[dict]) -> str:
    head = list(rows[0]) if rows else ["number"]
    return html_table(head, [[html_cell(r[k]) for k in head] for r in rows])


def _figure(caption: str, png: bytes | str, alt: str) -> str:
    if isinstance(png, str):  # why it could not be drawn
        return (
            f'<div class="panel"><h3>{escape(caption)}</h3><p>{escape(png)}</p></div>'
        )
    return f"<figure>{picture(png, alt)}<figcaption>{escape(caption)}</figcaption></figure>"


# What each picture draws, in words, for a reader who cannot see it (the caption
# under it says what it is for); `_alt_texts` adds the sweep's numbers.
DRAWN = [
    (
        "Scatter of each trial's validation accuracy against its number, {colours},"
        " under a black step line of the best so far"
    ),
    (
        "Scatter charts, one per parameter, of each trial's validation accuracy"
        " against the parameter's value, coloured as in the history"
    ),
    (
        "Horizontal bars, one per parameter, of its share of the variation in"
        " validation accuracy"
    ),
    (
        "A vertical axis per parameter and one for the validation accuracy, each trial"
        " a line through its values, dark purple for the lowest accuracy to yellow for"
        " the highest"
    ),
]


def _alt_texts(rows: list[dict], names: list[str], importances, best) -> list[str]:
    """DRAWN, in the pictures' order, with the numbers of the scored trials `rows`:
    their lowest and highest score, the best so far, each parameter's range and the
    values of the highest and lowest trials, and `importances` ({name: share},
    largest first; a text when there are none), and the `best` complete trial (or
    None)."""
    texts = list(DRAWN)
    texts[0] = texts[0].format(colours=_colours(rows))
    if not rows:
        return texts
    low = min(rows, key=lambda r: r["val_accuracy"])
    high = max(rows, key=lambda r: r["val_accuracy"])
    texts[0] += (
        f": 1 trial, {_scored(low)}"
        if len(rows) == 1
        else f": {len(rows)} trials, from {_scored(low)} to {_scored(high)}"
    )
    if best is not None:  # the step line reaches its top at the first trial scoring it
        texts[0] += (
            f"; the best so far {best['val_accuracy']:.4f} from trial {best['number']} on"
        )
    texts[1] += f": {', '.join(_spread(rows, name) for name in names)}"
    texts[1] += f"; the highest, {_trial(high)}, at {_values(high, names)}"
    if isinstance(importances, dict):
        texts[2] += ": " + ", ".join(f"{n} {v:.2f}" for n, v in importances.items())
    if len(rows) >= 2:
        texts[3] += (
            f": the highest line, {_trial(high)}, through {_values(high, names)};"
            f" the lowest, {_trial(low)}, through {_values(low, names)}"
        )
    return texts


COLOURED = {"complete": "blue if complete",
            "pruned": "orange if pruned (its last epoch's)", "fail": "grey if failed"}  # fmt: skip


def _colours(rows: list[dict]) -> str:
    """ "blue if complete, grey if failed": the colours of the trials' states, as
    the history's legend lists them (every mapped state's when there are no
    trials)."""
    states = _states(rows) if rows else list(COLOURED)
    return ", ".join(
        COLOURED.get(state, f"dark grey if {state} (its last epoch's)")
        for state in states
    )


def _states(rows: list[dict]) -> list[str]:
    """The states of the trials `rows`: those STATE_COLOURS maps in its order, then
    any others (drawn in OTHER_COLOUR) by name."""
    found = {r["state"] for r in rows}
    return [s for s in STATE_COLOURS if s in found] + sorted(found - set(STATE_COLOURS))


def _scored(row: dict) -> str:
    """ "0.9731 (trial 4)"."""
    return f"{row['val_accuracy']:.4f} (trial {row['number']})"


def _trial(row: dict) -> str:
    """ "trial 4 at 0.9731"."""
    return f"trial {row['number']} at {row['val_accuracy']:.4f}"


def _values(row: dict, names: list[str]) -> str:
    """ "lr 0.00421, optimizer adam": a trial's parameters."""
    return ", ".join(f"{name} {_shown(row[name])}" for name in names)


def _spread(rows: list[dict], name: str) -> str:
    """ "lr from 0.0011 to 0.0093", or "optimizer adam or sgd": the values tried."""
    _, _, categories = _axis_values(rows, name)
    if categories:
        *most, last = categories
        return f"{name} {', '.join(most)} or {last}" if most else f"{name} {last}"
    low, high = min(r[name] for r in rows), max(r[name] for r in rows)
    if low == high:
        return f"{name} {_shown(low)}"
    return f"{name} from {_shown(low)} to {_shown(high)}"


def _shown(value) -> str:
    """A parameter's value as the pictures print it: 3 significant digits."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _draw(draw, *args) -> bytes | str:
    """draw(*args) -> Figure as PNG bytes, or the reason it cannot be drawn."""
    try:
        fig = draw(*args)
    except _NotEnough as e:
        return str(e)
    for ax in fig.axes:
        chart_text(ax)
    return png_bytes(fig)


class _NotEnough(Exception):
    """Too few trials for a picture (the message says how many it needs)."""


def _history(rows: list[dict]) -> Figure:
    if not rows:
        raise _NotEnough("No trial has a validation accuracy yet.")
    fig = new_figure((WIDTH, 4))
    ax = fig.subplots()
    for state in _states(rows):  # the legend lists only the states of some trial
        mine = [r for r in rows if r["state"] == state]
        colour = STATE_COLOURS.get(state, OTHER_COLOUR)
        ax.scatter([r["number"] for r in mine], [r["val_accuracy"] for r in mine],
                   color=colour, label=state, zorder=3)  # fmt: skip
    complete = sorted((r for r in rows if r["state"] == "complete"),
                      key=lambda r: r["number"])  # fmt: skip
    if complete:
        best = np.maximum.accumulate([r["val_accuracy"] for r in complete])
        ax.step([r["number"] for r in complete], best, where="post", color="black",
                label="best so far")  # fmt: skip
    ax.set(xlabel="trial", ylabel="validation accuracy")
    whole_epochs(ax.xaxis)  # trial numbers are whole too: no trial 0.5
    ax.legend(loc="lower right", fontsize=TEXT)
    ax.grid(alpha=0.3)
    return fig


def _axis_values(rows: list[dict], name: str) -> tuple[list, bool, list | None]:
    """(positions, log scale?, category names or None) of a parameter's values."""
    values = [r[name] for r in rows]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        positive = all(v > 0 for v in values)
        spread = max(values) / min(values) if positive and min(values) else 0
        return values, spread >= 20, None
    categories = sorted({str(v) for v in values})
    return [categories.index(str(v)) for v in values], False, categories


def _slices(rows: list[dict], names: list[str]) -> Figure:
    if not rows:
        raise _NotEnough("No trial has a validation accuracy yet.")
    cols = min(2, len(names))
    fig = new_figure((WIDTH, 3.2 * math.ceil(len(names) / cols)))
    axes = np.atleast_1d(fig.subplots(math.ceil(len(names) / cols), cols)).ravel()
    for ax, name in zip(axes, names):
        x, log, categories = _axis_values(rows, name)
        colours = [STATE_COLOURS.get(r["state"], OTHER_COLOUR) for r in rows]
        ax.scatter(x, [r["val_accuracy"] for r in rows], c=colours, zorder=3)
        if log:
            ax.set_xscale("log")
        if categories:
            ax.set_xticks(range(len(categories)), categories)
        ax.set(xlabel=name, ylabel="validation accuracy")
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return fig


def _importances(study, names: list[str]) -> dict[str, float] | str:
    """{name: share of the variation}, largest first; or why there are none."""
    import optuna  # the optional sweep extra: only when sweeping

    complete = study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
    )
    if len(complete) < 3 or len(names) < 2:
        return (
            "Needs at least 3 completed trials and 2 parameters "
            f"(there are {len(complete)} and {len(names)})."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature and few-trial warnings
        try:
            return optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
        except (RuntimeError, ValueError) as e:
            return f"Optuna could not compute them: {e}"


def _importance_bars(found: dict[str, float]) -> Figure:
    fig = new_figure((WIDTH, 0.5 * len(found) + 1.5))
    ax = fig.subplots()
    ax.barh(list(found)[::-1], list(found.values())[::-1], color=BLUE)
    ax.set(xlabel="importance (share of the variation in validation accuracy)")
    return fig


def _parallel(rows: list[dict], names: list[str]) -> Figure:
    from matplotlib import colormaps

    if len(rows) < 2:
        raise _NotEnough("Needs at least 2 trials with a validation accuracy.")
    columns = [*names, "val_accuracy"]
    fig = new_figure((WIDTH, 4))
    ax = fig.subplots()
    scaled = []
    for name in columns:
        x, log, categories = _axis_values(rows, name)
        x = np.log10(x) if log else np.asarray(x, dtype=float)
        span = x.max() - x.min()
        scaled.append((x - x.min()) / span if span else np.full(len(x), 0.5))
        values = [r[name] for r in rows]
        ends = (
            (categories[0], categories[-1])
            if categories
            else (min(values), max(values))
        )
        for y, end in ((-0.07, ends[0]), (1.02, ends[1])):
            ax.annotate(
                _shown(end), (len(scaled) - 1, y), ha="center", fontsize=TEXT - 1
            )
    scores = np.array([r["val_accuracy"] for r in rows], dtype=float)
    span = np.ptp(scores) or 1.0
    cmap = colormaps["viridis"]
    for i in np.argsort(scores):  # the best drawn last, on top
        ax.plot(range(len(columns)), [s[i] for s in scaled],
                color=cmap((scores[i] - scores.min()) / span), alpha=0.8)  # fmt: skip
    crowded = len(columns) > 4  # names of 1.3-inch columns would run into each other
    ax.set_xticks(
        range(len(columns)),
        columns,
        rotation=25 if crowded else 0,
        ha="right" if crowded else "center",
    )
    ax.set_yticks([])
    ax.set_ylim(-0.12, 1.1)
    ax.set_xlim(-0.45, len(columns) - 0.55)  # room for "0.000112" under the first axis
    for i in range(len(columns)):
        ax.axvline(i, color="#bbbbbb", zorder=0)
    return fig
