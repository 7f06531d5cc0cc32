"""Alarms: the list, and add / edit / enable / skip / delete through the API.

The requests are `alarm_list`, `alarm_set`, `alarm_enable`, `alarm_skip` and `alarm_delete`
(docs/API.md). A daemon that does not have them yet answers `not_supported`, which this screen
shows on one line instead of a list.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from appliance.tui.screens.base import Page, fmt

__all__ = ["AlarmForm", "AlarmsScreen", "form_to_params"]

_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("time", "time HH:MM", "07:00"),
    ("days", "days (mon,tue,… or empty = every day)", ""),
    ("window_min", "smart window, min", "30"),
    ("sunrise_min", "sunrise, min", "20"),
    ("sound", "sound (chimes, birdsong, bowl; empty = the config's)", ""),
)


def form_to_params(values: dict[str, str]) -> dict[str, Any]:
    """The form's text as `alarm_set` parameters.

    Raises:
        ValueError: a number field that is not a number (the message names it).
    """
    out: dict[str, Any] = {"time": values.get("time", "").strip()}
    days = [d.strip().lower() for d in values.get("days", "").split(",") if d.strip()]
    out["days"] = days
    for key in ("window_min", "sunrise_min"):
        text = values.get(key, "").strip()
        if text:
            try:
                out[key] = float(text)
            except ValueError:
                raise ValueError(f"{key}: not a number: {text!r}") from None
    if "sound" in values:  # empty: the config's [speaker] sound
        out["sound"] = values["sound"].strip()
    return out


def _days(days: Any) -> str:
    """A row's days: the daemon's label ("daily", "mon,wed") or a list of day names."""
    if isinstance(days, str):
        return days or "every day"
    return ",".join(str(d) for d in days or []) or "every day"


class AlarmForm(ModalScreen[dict[str, str] | None]):
    """Add or edit one alarm; Enter saves, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, alarm: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.alarm = alarm or {}

    def compose(self) -> ComposeResult:
        """One input per field."""
        with Vertical(id="form"):
            yield Static("edit alarm" if self.alarm else "new alarm", classes="dim")
            for key, label, default in _FIELDS:
                value = self.alarm.get(key, default)
                if isinstance(value, list):
                    value = ",".join(str(v) for v in value)
                yield Input(str(value), placeholder=label, id=f"f-{key}")

    def action_cancel(self) -> None:
        """Leave without saving."""
        self.dismiss(None)

    @on(Input.Submitted)
    def _save(self) -> None:
        self.dismiss({k: self.query_one(f"#f-{k}", Input).value for k, _, _ in _FIELDS})


class AlarmsScreen(Page):
    """The alarm schedules."""

    PAGE_TITLE = "Alarms"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("space", "toggle_alarm", "On/off"),
        Binding("k", "skip", "Skip next"),
        Binding("x", "delete", "Delete"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.alarms: list[dict[str, Any]] = []
        self._editing = False  # back from the form: its outcome, not a reload, is shown

    def body(self) -> ComposeResult:
        """The table and the last outcome."""
        table: DataTable[str] = DataTable(id="alarms", cursor_type="row")
        table.add_columns("time", "days", "window", "sunrise", "sound", "on")
        yield table
        yield Static("", id="alarm-note")

    async def on_screen_resume(self) -> None:
        """Load the list whenever the screen is shown (not on return from the form)."""
        if self._editing:
            self._editing = False
            return
        await self.reload()

    async def reload(self) -> None:
        """Fetch and show the alarms."""
        ok, out = await self.bedside.request("alarm_list")
        table = self.query_one("#alarms", DataTable)
        table.clear()
        if not ok:
            self._note(False, out)
            return
        self.alarms = list(out.get("alarms", []) if isinstance(out, dict) else out)
        for a in self.alarms:
            table.add_row(
                fmt(a.get("time")),
                _days(a.get("days")),
                fmt(a.get("window_min"), " min", 0),
                fmt(a.get("sunrise_min"), " min", 0),
                fmt(a.get("sound") or "default"),
                "yes" if a.get("enabled", True) else "no",
                key=str(a.get("id")),
            )
        self._note(True, f"{len(self.alarms)} alarm(s)" if self.alarms else "no alarm set")

    def _note(self, ok: bool, text: Any) -> None:
        note = self.query_one("#alarm-note", Static)
        note.update(str(text))
        note.set_class(not ok, "error")

    def _selected(self) -> dict[str, Any] | None:
        table = self.query_one("#alarms", DataTable)
        if not self.alarms or table.cursor_row is None:
            return None
        return self.alarms[min(table.cursor_row, len(self.alarms) - 1)]

    async def _act(self, method: str, **params: Any) -> None:
        ok, out = await self.bedside.request(method, **params)
        if ok:
            await self.reload()
        else:
            self._note(False, out)

    def action_add(self) -> None:
        """A new alarm."""
        self._editing = True
        self.app.push_screen(AlarmForm(), self._saved)

    def action_edit(self) -> None:
        """Edit the selected alarm."""
        alarm = self._selected()
        if alarm is None:
            self._note(False, "no alarm selected")
            return
        self._editing = True
        self.app.push_screen(AlarmForm(alarm), lambda v: self._saved(v, alarm.get("id")))

    async def _saved(self, values: dict[str, str] | None, alarm_id: Any = None) -> None:
        if values is None:
            return
        try:
            params = form_to_params(values)
        except ValueError as e:
            self._note(False, e)
            return
        if isinstance(alarm_id, int):
            params["id"] = alarm_id
        await self._act("alarm_set", **params)

    async def action_toggle_alarm(self) -> None:
        """Enable or disable the selected alarm."""
        alarm = self._selected()
        if alarm is not None:
            await self._act("alarm_enable", id=alarm["id"], enabled=not alarm.get("enabled", True))

    async def action_skip(self) -> None:
        """Skip the selected alarm's next ring."""
        alarm = self._selected()
        if alarm is not None:
            await self._act("alarm_skip", id=alarm["id"])

    async def action_delete(self) -> None:
        """Delete the selected alarm."""
        alarm = self._selected()
        if alarm is not None:
            await self._act("alarm_delete", id=alarm["id"])
