"""Controls: standby, the light, snooze and dismiss; each a key and a button."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Button, Static

from appliance.tui.screens.base import Page

__all__ = ["ControlsScreen"]


class ControlsScreen(Page):
    """What the user can switch."""

    PAGE_TITLE = "Controls"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "standby", "Standby"),
        Binding("r", "light('reading')", "Reading"),
        Binding("n", "light('night')", "Night light"),
        Binding("o", "light('off')", "Light off"),
        Binding("z", "snooze", "Snooze"),
        Binding("d", "dismiss_alarm", "Dismiss"),
    ]

    def body(self) -> ComposeResult:
        """State, buttons, the last outcome."""
        yield Static("", id="standby-state")
        with Horizontal(classes="buttons"):
            yield Button("Standby (s)", id="standby")
        with Horizontal(classes="buttons"):
            yield Button("Reading (r)", id="light-reading")
            yield Button("Night (n)", id="light-night")
            yield Button("Off (o)", id="light-off")
        with Horizontal(classes="buttons"):
            yield Button("Snooze (z)", id="snooze")
            yield Button("Dismiss (d)", id="dismiss")
        yield Static("", id="outcome")

    def on_mount(self) -> None:
        """Follow the standby state."""
        super().on_mount()
        self.watch(self.bedside, "status", self._show, init=True)

    def _show(self, st: dict[str, Any] | None) -> None:
        if st is None:
            return
        self.query_one("#standby-state", Static).update(
            "standby ON: the radar is off, nothing is recorded (the alarm still rings)"
            if st.get("standby")
            else "standby off: sensing"
        )

    def _say(self, ok: bool, out: Any, done: str) -> None:
        line = self.query_one("#outcome", Static)
        line.update(done if ok else f"could not: {out}")
        line.set_class(not ok, "error")

    async def action_standby(self) -> None:
        """Toggle standby."""
        st = self.bedside.status or {}
        on = not bool(st.get("standby"))
        ok, out = await self.bedside.request("set_standby", on=on)
        self._say(ok, out, f"standby {'on' if on else 'off'}")

    async def action_light(self, mode: str) -> None:
        """Set the light's mode."""
        ok, out = await self.bedside.request("set_light", mode=mode)
        self._say(ok, out, f"light {mode}")

    async def action_snooze(self) -> None:
        """Snooze the ringing alarm."""
        ok, out = await self.bedside.request("snooze")
        self._say(ok, out, "alarm snoozed")

    async def action_dismiss_alarm(self) -> None:
        """Stop the ringing alarm."""
        ok, out = await self.bedside.request("dismiss")
        self._say(ok, out, "alarm dismissed")

    @on(Button.Pressed)
    async def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        if bid == "standby":
            await self.action_standby()
        elif bid.startswith("light-"):
            await self.action_light(bid.removeprefix("light-"))
        elif bid == "snooze":
            await self.action_snooze()
        elif bid == "dismiss":
            await self.action_dismiss_alarm()
