"""The 14-day chart: top channels by name, "others", the legend beside the bars; `seedbot report --chart`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg

from bot.ops.chart import CHART_TOP_CHANNELS, chart_figure
from bot.storage.tables import UsageEntry
from tests.factories import incoming
from tests.ops.test_admin import run_cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_top_channels_by_name_then_others_with_the_legend_outside_the_bars() -> None:
    day = date(2026, 11, 29)
    series = {f"slack:C{i:02d}": [(i + 1) * 10_000_000] * 14 for i in range(11)}
    labels = {f"slack:C{i:02d}": f"#team-{i}" for i in range(10)}  # C10 has no known name
    figure = chart_figure(series, day, labels)
    axes = figure.axes[0]
    legend = axes.get_legend()
    names = [t.get_text() for t in legend.get_texts()]
    # Read top-down like the stacks: "others" on top, the biggest spender (C10, unnamed) at the bottom.
    assert len(names) == CHART_TOP_CHANNELS + 1
    assert names[0] == "others" and names[-1] == "slack:C10" and names[-2] == "#team-9"
    assert set(names[1:-1]) == {f"#team-{i}" for i in range(3, 10)}
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= axes.get_window_extent(renderer).x1
    top = sum(v[0] for v in series.values()) / 1e9
    assert abs(axes.get_ylim()[1] - top) / top < 0.1  # every day's stack is drawn to its full height


async def test_seedbot_report_writes_the_chart(core_for, sqlite_url: str, tmp_path: Path) -> None:
    core = await core_for(sqlite_url)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    async with core.db.session() as session:
        for i, name in enumerate(("backend", "frontend", "infra")):
            claimed = await core.store.claim(incoming("x", channel=f"C{i}", message_id=f"m{i}"), "", 0)
            assert claimed is not None
            for back in range(14):
                session.add(UsageEntry(channel_pk=claimed.channel.pk, user_id="U1", status="ok",
                                       cost_nanos=(i + 1) * (back + 3) * 20_000_000,
                                       started_at=datetime(yesterday.year, yesterday.month, yesterday.day, 12)
                                       - timedelta(days=back)))
            await core.names.remember("slack", "channel", f"C{i}", name)
    chart = tmp_path / "spend.png"
    code, out, err = await run_cli(tmp_path, sqlite_url, "report", "--chart", str(chart))
    assert code == 0, err
    assert "seedbot spend for" in out
    assert chart.read_bytes().startswith(PNG_SIGNATURE)
