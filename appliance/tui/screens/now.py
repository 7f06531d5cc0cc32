"""Now: a large clock, the next alarm, who is in bed and how they breathe, the room."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual.app import ComposeResult
from textual.widgets import Digits, Sparkline, Static

from appliance.tui.screens.base import Page, fmt, local_time

__all__ = ["NowScreen", "presence_line"]


def presence_line(st: dict[str, Any]) -> str:
    """Presence / in bed / asleep, in words."""
    if st.get("standby"):
        return "standby: the radar is off"
    presence = st.get("presence")
    if presence is None:
        return "nobody seen yet"
    state = (st.get("session") or {}).get("state")
    stage = st.get("stage")
    if not presence:
        return "bed empty" + (" (night in progress)" if state == "in_bed" else "")
    if stage in ("light", "deep", "rem"):
        return "asleep"
    return "in bed" if state == "in_bed" else "someone is there"


class NowScreen(Page):
    """The live view."""

    PAGE_TITLE = "Now"

    def body(self) -> ComposeResult:
        """Clock, alarm, person, trace, room."""
        yield Digits("--:--", id="clock")
        yield Static("", id="alarm")
        yield Static("", id="person")
        yield Static("breathing, last minute", id="trace-label", classes="dim")
        yield Sparkline([], id="trace")
        yield Static("", id="room")

    def on_mount(self) -> None:
        """Tick the clock; follow the status and the trace."""
        super().on_mount()
        self._tick()
        self.set_interval(1.0, self._tick)
        self.watch(self.bedside, "status", self._show, init=True)
        self.watch(self.bedside, "breath", self._trace, init=True)

    def _tick(self) -> None:
        app = self.bedside
        self.query_one("#clock", Digits).update(local_time(app.now(), app.tz, "%H:%M"))

    def _show(self, st: dict[str, Any] | None) -> None:
        if st is None:
            return
        app = self.bedside
        nxt = st.get("next_alarm")
        if nxt:
            when = datetime.fromisoformat(nxt).timestamp()
            alarm = f"next alarm  {local_time(when, app.tz, '%a %H:%M')}"
        else:
            alarm = "no alarm set"
        self.query_one("#alarm", Static).update(alarm)
        self.query_one("#person", Static).update(
            f"{presence_line(st)}\n"
            f"stage {fmt(st.get('stage'))}   breath {fmt(st.get('breath_rate'), '/min')}"
            f"   heart {fmt(st.get('heart_rate'), '/min', 0)}"
        )
        env = st.get("environment") or {}
        self.query_one("#room", Static).update(
            f"room {fmt(env.get('temperature_c'), ' °C')}  {fmt(env.get('humidity_pct'), ' %', 0)}"
            f"  {fmt(env.get('illuminance_lux'), ' lx')}"
            f"   standby {'ON' if st.get('standby') else 'off'}"
        )

    def _trace(self, points: tuple[float, ...]) -> None:
        self.query_one("#trace", Sparkline).data = list(points)
        self.query_one("#trace-label", Static).update(
            "breathing, last minute" if points else "breathing, last minute: no live data"
        )
