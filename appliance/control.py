"""What a user can ask of the running daemon: one validated command set, for every interface.

The control API (Unix socket), the MQTT bridge, the buttons and the TUI all call a `Controller`;
none of them touches the daemon's insides. Every method validates its arguments and raises
`CommandError` (one line, for the reply) on bad input; it never raises anything else for a user's
mistake. Methods run on the daemon's event loop thread and return JSON-ready values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appliance.alarm import parse_hhmm
from appliance.errors import ApplianceError, StoreError
from appliance.report_data import night_report

if TYPE_CHECKING:
    from appliance.daemon import Daemon

__all__ = ["LIGHT_MODES", "SMART_WINDOW_MAX_MIN", "CommandError", "Controller"]

LIGHT_MODES: tuple[str, ...] = ("off", "reading", "night")
"""The light's user modes (the sunrise is the alarm's, not a mode)."""
SMART_WINDOW_MAX_MIN = 45.0
"""Longest smart window, minutes (as `AlarmConfig.window_min`)."""


class CommandError(ApplianceError):
    """A command that cannot be carried out as asked (bad argument, nothing to act on)."""


class Controller:
    """The daemon's commands.

    Args:
        daemon: The running daemon.
    """

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon

    # -- reading ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The current status (see `Daemon.snapshot`)."""
        return self._d.snapshot()

    def nights(self, limit: int = 14) -> list[dict[str, Any]]:
        """The last `limit` (1–366) closed nights' summaries, newest first.

        Raises:
            CommandError: a bad limit, or the store cannot be read.
        """
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 366:
            raise CommandError("limit must be an integer from 1 to 366")
        try:
            rows = self._d.store.sessions(limit=limit + 1)
        except StoreError as e:
            raise CommandError(f"store unavailable: {e}") from None
        out: list[dict[str, Any]] = []
        for row in rows:
            if row.ended_s is None:
                continue
            out.append(
                {
                    "session_id": row.id,
                    "started_s": row.started_s,
                    "ended_s": row.ended_s,
                    "summary": row.summary,
                }
            )
        return out[:limit]

    def night(self, session_id: int | None = None) -> dict[str, Any]:
        """One night's report (hypnogram, metrics, alarm); None = the latest.

        Raises:
            CommandError: no such night, or the store cannot be read.
        """
        if session_id is not None and (
            not isinstance(session_id, int) or isinstance(session_id, bool)
        ):
            raise CommandError("session_id must be an integer")
        try:
            if session_id is None:
                rows = self._d.store.sessions(limit=1)
                row = rows[0] if rows else None
            else:
                row = self._d.store.session(session_id)
            if row is None:
                raise CommandError("no such night" if session_id is not None else "no night yet")
            _, data = night_report(self._d.store, row)
        except StoreError as e:
            raise CommandError(f"store unavailable: {e}") from None
        return data

    # -- acting ----------------------------------------------------------------------------------
    def set_standby(self, on: bool) -> dict[str, Any]:
        """Standby on (radar off at the source, nothing recorded) or off.

        Raises:
            CommandError: `on` is not a boolean.
        """
        if not isinstance(on, bool):
            raise CommandError("standby must be true or false")
        self._d.set_standby(on)
        return {"standby": self._d.standby}

    def dismiss(self) -> dict[str, Any]:
        """Stop the ringing alarm.

        Raises:
            CommandError: no alarm is ringing.
        """
        if not self._d.alarm.stop():
            raise CommandError("no alarm is ringing")
        return {"dismissed": True}

    # -- alarm and light (minimal, against today's single daily alarm) ---------------------------
    # The alarm schedules (alarm_set, alarm_enable(id, on), snooze) arrive with the alarm branch
    # and will replace the bodies below; the signatures are the ones the MQTT bridge calls.
    def _check_not_ringing(self) -> None:
        a = self._d.alarm.alarm
        if a is not None and a.state == "ringing":
            raise CommandError("the alarm is ringing: dismiss it first")

    def set_alarm_time(self, hhmm: str) -> dict[str, Any]:
        """Set the daily alarm's local time "HH:MM" (kept in the store) and re-arm it.

        Raises:
            CommandError: not a time of day, or the alarm is ringing.
        """
        if not isinstance(hhmm, str):
            raise CommandError("alarm time must be a string HH:MM")
        try:
            h, m = parse_hhmm(hhmm)
        except ValueError as e:
            raise CommandError(str(e)) from None
        self._check_not_ringing()
        self._d.set_alarm(time=f"{h:02d}:{m:02d}")
        return self._alarm()

    def set_alarm_enabled(self, on: bool) -> dict[str, Any]:
        """Switch the daily alarm on or off (kept in the store).

        Raises:
            CommandError: `on` is not a boolean, or the alarm is ringing.
        """
        if not isinstance(on, bool):
            raise CommandError("alarm enabled must be true or false")
        self._check_not_ringing()
        self._d.set_alarm(enabled=on)
        return self._alarm()

    def set_smart_window(self, minutes: float) -> dict[str, Any]:
        """Set the smart window before the alarm time, minutes in [0, 45].

        Raises:
            CommandError: not a number in range, or the alarm is ringing.
        """
        if (
            not isinstance(minutes, int | float)
            or isinstance(minutes, bool)
            or not 0.0 <= float(minutes) <= SMART_WINDOW_MAX_MIN
        ):
            raise CommandError("smart window must be a number of minutes from 0 to 45")
        self._check_not_ringing()
        self._d.set_alarm(window_min=float(minutes))
        return self._alarm()

    def snooze(self) -> dict[str, Any]:
        """Snooze the ringing alarm.

        Raises:
            CommandError: always, until the alarm schedules bring snoozing.
        """
        raise CommandError("snooze arrives with the alarm schedules")

    def set_light(self, mode: str, brightness: int | None = None) -> dict[str, Any]:
        """Set the light's mode (off | reading | night) and brightness (0–255, None = the mode's).

        Raises:
            CommandError: unknown mode or a bad brightness.
        """
        if mode not in LIGHT_MODES:
            raise CommandError(f"light mode must be one of {', '.join(LIGHT_MODES)}")
        if brightness is not None and (
            not isinstance(brightness, int)
            or isinstance(brightness, bool)
            or not 0 <= brightness <= 255
        ):
            raise CommandError("brightness must be an integer from 0 to 255")
        self._d.set_light(mode, brightness)
        return {"mode": mode, "brightness": brightness}

    def _alarm(self) -> dict[str, Any]:
        snap = self._d.snapshot()
        return {**snap["alarm"], "next_alarm": snap["next_alarm"]}
