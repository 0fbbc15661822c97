"""The daily spend chart: nano-dollars per channel per day as stacked bars, a PNG for the summary's DM, `seedbot
report --chart` and the console. matplotlib is imported on first use (it is large and most processes never draw)."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import TYPE_CHECKING

from bot.domain import NANOS_PER_USD

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CHART_DAYS = 14
CHART_TOP_CHANNELS = 8


def render_chart(series: dict[str, list[int]], last_day: date, labels: dict[str, str] | None = None) -> bytes:
    """`chart_figure` as PNG bytes. CPU-heavy: call it in a thread."""
    buffer = io.BytesIO()
    chart_figure(series, last_day, labels or {}).savefig(buffer, format="png")
    return buffer.getvalue()


def chart_figure(series: dict[str, list[int]], last_day: date, labels: dict[str, str]) -> Figure:
    """Daily spend (nano-dollars per channel address per day, oldest first) stacked by channel: the top
    CHART_TOP_CHANNELS by spend and "others", the legend (names from `labels`, else addresses) beside
    the bars, 1000x500 px with large type so it stays readable in Slack's inline preview."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    days = len(next(iter(series.values()))) if series else CHART_DAYS
    ranked = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    # A `$` in a name is a dollar sign, not the start of matplotlib's math text (which raises on `$$`).
    stacks = [(labels.get(address, address).replace("$", r"\$"), values)
              for address, values in ranked[:CHART_TOP_CHANNELS]]
    if len(ranked) > CHART_TOP_CHANNELS:
        rest = [sum(day) for day in zip(*(values for _, values in ranked[CHART_TOP_CHANNELS:]), strict=True)]
        stacks.append(("others", rest))
    ticks = [(last_day - timedelta(days=days - 1 - i)).strftime("%d %b") for i in range(days)]
    figure = Figure(figsize=(10, 5), dpi=100)
    axes = figure.add_subplot()
    bottom = [0.0] * days
    # tab10 without its grey, which stands for "others".
    colours = [c for i, c in enumerate(matplotlib.colormaps["tab10"].colors) if i != 7]
    for index, (label, values) in enumerate(stacks):
        dollars = [v / NANOS_PER_USD for v in values]
        colour = "#9e9e9e" if label == "others" else colours[index % len(colours)]
        axes.bar(ticks, dollars, bottom=bottom, label=label, color=colour)
        bottom = [b + d for b, d in zip(bottom, dollars, strict=True)]
    axes.set_ylabel("spend per day", fontsize=13)
    axes.yaxis.set_major_formatter(StrMethodFormatter("${x:,.2f}"))
    axes.set_title(f"seedbot spend, last {days} days", fontsize=15)
    axes.tick_params(axis="x", labelrotation=45, labelsize=11)
    axes.tick_params(axis="y", labelsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    if stacks:
        # Outside the axes, so no bar hides behind it; reversed to read top-down like the stacks.
        handles, names = axes.get_legend_handles_labels()
        axes.legend(handles[::-1], names[::-1], fontsize=12, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    frameon=False)
    figure.tight_layout()
    return figure
