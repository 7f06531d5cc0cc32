"""The bedside TUI: Now, Last night, Alarms, Controls; a client of the daemon's API.

Keyboard only (1–4 switch screens, q quits; each screen lists its keys in the footer), a dim
warm theme for a dark bedroom, and a connection that comes back by itself: while the daemon is
away the top line says "daemon not running — retrying" and the screens keep their last values.
Time is injected (`now`), so a screenshot of the clock is reproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.theme import Theme

from appliance.api_client import ApiError, AsyncClient, DaemonNotRunning
from appliance.errors import ApplianceError
from appliance.tui.link import DaemonLink, Outcome
from appliance.tui.screens.alarms import AlarmsScreen
from appliance.tui.screens.controls import ControlsScreen
from appliance.tui.screens.night import NightScreen
from appliance.tui.screens.now import NowScreen

__all__ = ["BEDSIDE_THEME", "ApplianceApp"]

BEDSIDE_THEME = Theme(
    name="bedside",
    primary="#b07a40",
    secondary="#8a6a4a",
    accent="#c08a50",
    foreground="#a89880",
    background="#0b0907",
    surface="#14110d",
    panel="#1d1812",
    success="#7a9a5a",
    warning="#c09040",
    error="#b0503a",
    dark=True,
)
"""Dim amber on near-black: little blue light, readable at night."""

BREATH_POINTS = 60
"""Seconds of breath rate the Now screen's trace keeps (the last minute)."""


class ApplianceApp(App[None]):
    """The TUI.

    Args:
        socket_path: The daemon's API socket.
        now: The clock shown on the Now screen, UTC epoch seconds (injected for tests).
        tz: Local zone of the clock and of the nights' times; None = the system's.
        poll_s: How often the status is asked for, seconds (real time).
        retry_s: How long to wait before reconnecting to an absent daemon, seconds.
    """

    CSS_PATH = "app.tcss"
    MODES: ClassVar[dict[str, Any]] = {
        "now": NowScreen,
        "night": NightScreen,
        "alarms": AlarmsScreen,
        "controls": ControlsScreen,
    }
    TITLE = "appliance"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('now')", "Now"),
        Binding("2", "switch_mode('night')", "Night"),
        Binding("3", "switch_mode('alarms')", "Alarms"),
        Binding("4", "switch_mode('controls')", "Controls"),
        Binding("q", "quit", "Quit"),
    ]

    status: reactive[dict[str, Any] | None] = reactive(None, always_update=True)
    connected: reactive[bool] = reactive(False)
    link_text: reactive[str] = reactive("connecting…")
    breath: reactive[tuple[float, ...]] = reactive(())
    """The last minute's respiration trace (10-Hz displacement, mm), or breath rates per second."""

    def __init__(
        self,
        socket_path: Path,
        *,
        now: Callable[[], float] = time.time,
        tz: ZoneInfo | None = None,
        poll_s: float = 1.0,
        retry_s: float = 2.0,
    ) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.now = now
        self.tz = tz
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.link = DaemonLink(socket_path)
        self._breath: deque[float] = deque(maxlen=BREATH_POINTS)
        self._wave: deque[float] = deque(maxlen=600)  # 1 min at 10 Hz
        self.polls = 0
        """Status polls answered (tests wait on it)."""

    def on_mount(self) -> None:
        """Theme, first screen, and the two workers that talk to the daemon."""
        self.register_theme(BEDSIDE_THEME)
        self.theme = "bedside"
        self.switch_mode("now")
        self.run_worker(self._poll(), name="poll", exclusive=False)
        self.run_worker(self._events(), name="events", exclusive=False)

    async def request(self, method: str, **params: Any) -> Outcome:
        """One API request; refreshes the status after a command that changes it."""
        ok, out = await self.link.request(method, **params)
        self._set_connected(ok or self.link.connected)
        if ok and method not in ("status", "nights", "night", "alarm_list", "methods"):
            await self.refresh_status()
        return ok, out

    async def refresh_status(self) -> None:
        """Ask for the status now."""
        ok, out = await self.link.request("status")
        self._set_connected(ok)
        if ok:
            self.polls += 1
            self.status = out

    def _set_connected(self, ok: bool) -> None:
        self.connected = ok
        self.link_text = "connected to the daemon" if ok else "daemon not running — retrying"

    async def _poll(self) -> None:
        while True:
            await self.refresh_status()
            await asyncio.sleep(self.poll_s if self.connected else self.retry_s)

    async def _events(self) -> None:
        """Live events: breath per second, and a status refresh when something changes."""
        while True:
            try:
                async for msg in AsyncClient.subscribe(
                    self.socket_path, ["second", "standby", "session", "alarm", "night"]
                ):
                    self.on_bus_event(msg)
                    if msg["event"] != "second":
                        await self.refresh_status()
            except (DaemonNotRunning, ApiError, ApplianceError, OSError, ValueError):
                pass
            await asyncio.sleep(self.retry_s)

    def on_bus_event(self, msg: dict[str, Any]) -> None:
        """Take one bus event (`{"event", "t_s", "data"}`).

        The `second` topic's `waveform_mm` (the user's 10-Hz chest displacement) is the Now
        screen's respiration trace; without one (nobody seen) the breath rate per second is.
        """
        if msg.get("event") != "second":
            return
        data = msg.get("data") or {}
        rate = data.get("breath_rate")
        wave = data.get("waveform_mm")
        if isinstance(wave, list) and wave:
            # The real trace: the chest's 10-Hz displacement over the last minute.
            self._wave.extend(float(v) for v in wave if isinstance(v, int | float))
            self.breath = tuple(self._wave)
            return
        self._breath.append(float(rate) if isinstance(rate, int | float) else 0.0)
        self.breath = tuple(self._breath)

    async def on_unmount(self) -> None:
        """Close the request connection."""
        with contextlib.suppress(Exception):
            await self.link.close()
