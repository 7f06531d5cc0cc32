"""Last night: the hypnogram, the metrics, out-of-bed episodes, earlier nights and a trend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from appliance.frames import EPOCH_S
from appliance.tui.screens.base import Page, fmt, local_time
from appliance.tui.widgets.hypnogram import Hypnogram

__all__ = ["NightScreen", "out_of_bed"]

TREND_NIGHTS = 14


def out_of_bed(stages: Sequence[str]) -> list[tuple[int, int]]:
    """(first epoch, epochs) of each absent run between the first and last present epoch."""
    present = [i for i, s in enumerate(stages) if s != "absent"]
    if not present:
        return []
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for i in range(present[0], present[-1] + 1):
        if stages[i] == "absent":
            start = i if start is None else start
        elif start is not None:
            runs.append((start, i - start))
            start = None
    return runs


class NightScreen(Page):
    """One stored night at a time; ← older, → newer."""

    PAGE_TITLE = "Last night"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "older", "Older"),
        Binding("right", "newer", "Newer"),
        Binding("f5", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.nights: list[dict[str, Any]] = []
        """The last nights' summaries, newest first."""
        self.index = 0
        """Which of `nights` is shown (0 = the latest)."""
        self.shown: dict[str, Any] | None = None

    def body(self) -> ComposeResult:
        """Title, chart, metrics, episodes, trend."""
        yield Static("", id="night-title")
        yield Hypnogram(id="hypnogram")
        yield Static("", id="metrics")
        yield Static("", id="episodes")
        yield Static("trend, last 14 nights", classes="dim")
        for key, label in (("tst", "sleep"), ("sol", "latency"), ("se", "efficiency")):
            with Horizontal(classes="trend"):
                yield Static(label, classes="trend-label")
                yield Sparkline([], id=f"trend-{key}")

    async def on_screen_resume(self) -> None:
        """Load the nights whenever the screen is shown."""
        await self.action_reload()

    async def action_reload(self) -> None:
        """Fetch the nights' list and show the selected one."""
        ok, out = await self.bedside.request("nights", limit=TREND_NIGHTS)
        if not ok:
            self.query_one("#night-title", Static).update(str(out))
            return
        self.nights = list(out)
        self.index = min(self.index, max(0, len(self.nights) - 1))
        self._trend()
        await self._load()

    async def action_older(self) -> None:
        """The night before."""
        if self.index + 1 < len(self.nights):
            self.index += 1
            await self._load()

    async def action_newer(self) -> None:
        """The night after."""
        if self.index > 0:
            self.index -= 1
            await self._load()

    async def _load(self) -> None:
        title = self.query_one("#night-title", Static)
        if not self.nights:
            title.update("no night recorded yet")
            return
        sid = self.nights[self.index]["session_id"]
        ok, rep = await self.bedside.request("night", session_id=sid)
        if not ok:
            title.update(str(rep))
            return
        self.shown = rep
        self._draw(rep)

    def _draw(self, rep: dict[str, Any]) -> None:
        tz = self.bedside.tz
        start = float(rep.get("start_s") or 0.0)
        end = rep.get("end_s")
        self.query_one("#night-title", Static).update(
            f"night {self.index + 1}/{len(self.nights)}  {local_time(start, tz)}"
            + (f"–{local_time(float(end), tz, '%H:%M')}" if end else "")
        )
        stages = list(rep.get("hypnogram") or [])
        self.query_one("#hypnogram", Hypnogram).show(stages)
        m = rep.get("metrics") or {}
        self.query_one("#metrics", Static).update(
            f"in bed {fmt(m.get('tib_min'), ' min', 0)}  asleep {fmt(m.get('tst_min'), ' min', 0)}"
            f"  efficiency {fmt(m.get('se_pct'), ' %', 0)}\n"
            f"latency {fmt(m.get('sol_min'), ' min', 0)}  WASO {fmt(m.get('waso_min'), ' min', 0)}"
            f"  light {fmt(m.get('light_min'), '', 0)} deep {fmt(m.get('deep_min'), '', 0)}"
            f" REM {fmt(m.get('rem_min'), '', 0)} min"
        )
        t0 = float(rep["epochs"][0]["t_s"]) if rep.get("epochs") else start
        runs = out_of_bed(stages)
        self.query_one("#episodes", Static).update(
            "out of bed: "
            + (
                ", ".join(
                    f"{local_time(t0 + a * EPOCH_S, tz, '%H:%M')} ({n * EPOCH_S / 60:.0f} min)"
                    for a, n in runs
                )
                if runs
                else "none"
            )
        )

    def _trend(self) -> None:
        oldest_first = list(reversed(self.nights))

        def series(key: str) -> list[float]:
            out = []
            for n in oldest_first:
                v = ((n.get("summary") or {}).get("metrics") or {}).get(key)
                out.append(float(v) if isinstance(v, int | float) else 0.0)
            return out

        self.query_one("#trend-tst", Sparkline).data = series("tst_min")
        self.query_one("#trend-sol", Sparkline).data = series("sol_min")
        self.query_one("#trend-se", Sparkline).data = series("se_pct")
