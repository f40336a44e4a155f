"""The report's two charts as PNG bytes, readable when printed in black and white.

Outcomes differ by shade *and* hatching, bars have black edges, and every text (title, axes,
legend) arrives already translated. Built with matplotlib's object API (no pyplot), so nothing
global is touched and no display is needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# Light to dark with distinct hatches: each series stays apart on a grey printout.
SHADES = ("0.25", "white", "0.6", "0.85", "0.45", "white")
HATCHES = ("", "//", "..", "xx", "\\\\", "--")
SIZE = (10, 5.5)
DPI = 110


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def stacked_bars(
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    ticks: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
) -> bytes:
    """Bars per tick, stacked by series (label, one count per tick)."""
    figure = Figure(figsize=SIZE, dpi=DPI)
    axes = figure.add_subplot()
    positions = list(range(len(ticks)))
    bottom = [0] * len(ticks)
    for index, (label, counts) in enumerate(series):
        axes.bar(
            positions,
            counts,
            bottom=bottom,
            label=label,
            color=SHADES[index % len(SHADES)],
            hatch=HATCHES[index % len(HATCHES)],
            edgecolor="black",
            linewidth=0.6,
        )
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xticks(positions, list(ticks), rotation=90, fontsize=8)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(axis="y", color="0.8", linewidth=0.5)
    axes.set_axisbelow(True)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    return _png(figure)


def bars(
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    ticks: Sequence[str],
    counts: Sequence[int],
    note: str | None = None,
) -> bytes:
    """One bar per tick, with its count written above it."""
    figure = Figure(figsize=SIZE, dpi=DPI)
    axes = figure.add_subplot()
    positions = list(range(len(ticks)))
    drawn = axes.bar(positions, counts, color="0.6", hatch="//", edgecolor="black", linewidth=0.6)
    axes.bar_label(drawn, fontsize=8)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xticks(positions, list(ticks), fontsize=9)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(axis="y", color="0.8", linewidth=0.5)
    axes.set_axisbelow(True)
    if note:
        axes.text(0.5, 0.5, note, transform=axes.transAxes, ha="center", va="center")
    figure.tight_layout()
    return _png(figure)
