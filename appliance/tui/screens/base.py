"""What every screen has: the connection line on top, the keys at the bottom."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

if TYPE_CHECKING:
    from appliance.tui.app import ApplianceApp

__all__ = ["Page", "fmt", "local_time"]


def fmt(v: Any, unit: str = "", digits: int = 1) -> str:
    """A value for display: '-' when unknown."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}{unit}"
    return f"{v}{unit}"


def local_time(t_s: float, tz: ZoneInfo | None, pattern: str = "%a %d %b %H:%M") -> str:
    """UTC epoch seconds as local text."""
    dt = datetime.fromtimestamp(t_s, tz) if tz is not None else datetime.fromtimestamp(t_s)
    return dt.strftime(pattern)


class Page(Screen[None]):
    """A screen with a title, the connection state, a scrolling body and the footer."""

    PAGE_TITLE = ""

    @property
    def bedside(self) -> ApplianceApp:
        """The app, typed."""
        from appliance.tui.app import ApplianceApp

        app = self.app
        if not isinstance(app, ApplianceApp):
            raise TypeError("a Page belongs to an ApplianceApp")
        return app

    def compose(self) -> ComposeResult:
        """Top line, body, footer."""
        yield Static(self.PAGE_TITLE, id="link")
        with VerticalScroll(id="body"):
            yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        """The screen's own widgets."""
        yield from ()

    def on_mount(self) -> None:
        """Follow the connection state."""
        self.watch(self.bedside, "link_text", self._show_link, init=True)

    def _show_link(self, text: str) -> None:
        line = self.query_one("#link", Static)
        line.update(f"{self.PAGE_TITLE} · {text}")
        line.set_class(not self.bedside.connected, "offline")
