"""What a user can ask of the running daemon: one validated command set, for every interface.

The control API (Unix socket), the MQTT bridge, the buttons and the TUI all call a `Controller`;
none of them touches the daemon's insides. Every method validates its arguments and raises
`CommandError` (one line, for the reply) on bad input; it never raises anything else for a user's
mistake. Methods run on the daemon's event loop thread and return JSON-ready values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from appliance import alarm_schedule as sched
from appliance.errors import ApplianceError, StoreError
from appliance.report_data import night_report

if TYPE_CHECKING:
    from appliance.daemon import Daemon
    from hardware.light import LightMode

__all__ = ["LIGHT_MODES", "SMART_WINDOW_MAX_MIN", "CommandError", "Controller"]

STATUS_FIELDS: tuple[str, ...] = (
    "presence",
    "session",
    "stage",
    "breath_rate",
    "heart_rate",
    "environment",
    "next_alarm",
    "standby",
    "devices",
)
"""The fields `status` always answers (docs/API.md; `appliance status --json`)."""

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

    def snooze(self) -> dict[str, Any]:
        """Snooze the ringing alarm for the configured snooze time.

        Raises:
            CommandError: no alarm is ringing.
        """
        if not self._d.alarm.snooze():
            raise CommandError("no alarm is ringing")
        return {"snoozed": True}

    # -- alarms ----------------------------------------------------------------------------------
    def alarm_list(self) -> list[dict[str, Any]]:
        """Every alarm with its next ring (`appliance alarm list --json`'s rows).

        Raises:
            CommandError: the store cannot be read.
        """
        try:
            return sched.describe_store(self._d.store, self._d.tz, self._d.clock.now())
        except StoreError as e:
            raise CommandError(f"store unavailable: {e}") from None

    def alarm_set(
        self,
        id: int | None = None,
        time: str | None = None,
        days: list[str] | str | None = None,
        window_min: float | None = None,
        sunrise_min: float | None = None,
        sound: str | None = None,
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        """Create an alarm (`time` required) or change alarm `id`; returns its row.

        Args:
            id: The alarm to change; None = a new alarm.
            time: Local "HH:MM".
            days: "daily", "weekdays", "mon-fri", "once", ... or a list of day names.
            window_min: Smart window, minutes, 0–45.
            sunrise_min: Sunrise length, minutes, 0–60.
            sound: One of the shipped sounds, or "" for the config's `[speaker]` sound.
            enabled: On or off.

        Raises:
            CommandError: a bad value, an unknown id, or the store failed.
        """
        from dataclasses import replace

        d = self._d
        day_text = ",".join(days) if isinstance(days, list) else days
        try:
            current = None if id is None else d.store.alarm(id)
            if id is not None and current is None:
                raise CommandError(f"no alarm with id {id}")
            if (
                current is None
                or time is not None
                or day_text is not None
                or window_min is not None
            ):
                if current is None and time is None:
                    raise CommandError("a new alarm needs a time (HH:MM)")
                alarm = sched.set_alarm(
                    d.store,
                    d.clock.now(),
                    time if time is not None else current.time if current else "",
                    days=day_text or (sched.days_label(current.days) if current else "daily"),
                    window_min=window_min,
                    alarm_id=id,
                )
            else:
                alarm = current
            if sunrise_min is not None:
                if not 0.0 <= float(sunrise_min) <= 60.0:
                    raise CommandError("sunrise_min must be from 0 to 60 minutes")
                alarm = d.store.put_alarm(replace(alarm, sunrise_min=float(sunrise_min)))
            if sound is not None:
                # "" = the config's [speaker] sound
                alarm = d.store.put_alarm(replace(alarm, sound=sched.validate_sound(sound)))
            if enabled is not None:
                sched.set_enabled(d.store, alarm.id, bool(enabled))
        except (sched.AlarmInputError, StoreError) as e:
            raise CommandError(str(e)) from None
        return self._changed(alarm.id)

    def alarm_enable(self, id: int, enabled: bool) -> dict[str, Any]:
        """Turn alarm `id` on or off (on also clears a skip).

        Raises:
            CommandError: an unknown id, or the store failed.
        """
        try:
            sched.set_enabled(self._d.store, id, bool(enabled))
        except (sched.AlarmInputError, StoreError) as e:
            raise CommandError(str(e)) from None
        return self._changed(id)

    def alarm_skip(self, id: int | None = None) -> dict[str, Any]:
        """Skip the next occurrence of alarm `id` (None: the alarm that rings next).

        Raises:
            CommandError: nothing to skip, an unknown id, or the store failed.
        """
        try:
            alarm, _ = sched.skip_next(self._d.store, self._d.tz, self._d.clock.now(), id)
        except (sched.AlarmInputError, StoreError) as e:
            raise CommandError(str(e)) from None
        return self._changed(alarm.id)

    def alarm_delete(self, id: int) -> dict[str, Any]:
        """Delete alarm `id` (not 0, the config's).

        Raises:
            CommandError: an unknown id, id 0, or the store failed.
        """
        try:
            sched.delete_alarm(self._d.store, id)
        except (sched.AlarmInputError, StoreError) as e:
            raise CommandError(str(e)) from None
        self._d.alarm.reload()
        self._publish_alarm()
        return {"deleted": id}

    def _changed(self, alarm_id: int) -> dict[str, Any]:
        """Make the alarm task re-read the schedule; return the alarm's row."""
        self._d.alarm.reload()
        self._publish_alarm()
        rows = [r for r in self.alarm_list() if r["id"] == alarm_id]
        if not rows:
            raise CommandError(f"no alarm with id {alarm_id}")
        return rows[0]

    def _publish_alarm(self) -> None:
        d = self._d
        d.bus.publish("alarm", d.clock.now(), {"alarms": self.alarm_list()})

    # -- the main alarm (Home Assistant's alarm time, enable and smart window) --------------------
    def main_alarm(self) -> dict[str, Any]:
        """The alarm Home Assistant's entities act on.

        That is the config's alarm (id 0) if there is one, else the lowest-numbered alarm a
        user set, else {"id": None, ...}. Never raises: a store that cannot be read shows no alarm.
        """
        try:
            rows = self.alarm_list()
        except CommandError:
            rows = []
        return sched.main_alarm(rows)

    def _set_main(self, *, time: str | None = None, window_min: float | None = None) -> None:
        """Change the main alarm (a new daily one if there is none)."""
        from dataclasses import replace

        main = self.main_alarm()["id"]
        if main != sched.CONFIG_ALARM_ID:
            if main is None and time is None:
                raise CommandError("no alarm is set: set an alarm time first")
            self.alarm_set(id=main, time=time, window_min=window_min)
            return
        # The config's alarm: changed in the store, where the change stands until the config's
        # [alarm] values change (AlarmTask._seed).
        d = self._d
        try:
            alarm = d.store.alarm(sched.CONFIG_ALARM_ID)
            if alarm is None:
                raise CommandError("no alarm is set: set an alarm time first")
            if time is not None:
                alarm = replace(alarm, time=sched.parse_time(time), skip_s=None)
            if window_min is not None:
                alarm = replace(alarm, window_min=sched.validate_window(window_min))
            d.store.put_alarm(alarm)
        except (sched.AlarmInputError, StoreError) as e:
            raise CommandError(str(e)) from None
        self._changed(sched.CONFIG_ALARM_ID)

    def set_alarm_time(self, time: str) -> dict[str, Any]:
        """Set the main alarm's local time "HH:MM" (a new daily alarm if there is none).

        Raises:
            CommandError: not a time of day, or the store failed.
        """
        if not isinstance(time, str):
            raise CommandError("alarm time must be a string HH:MM")
        self._set_main(time=time)
        return self.main_alarm()

    def set_alarm_enabled(self, enabled: bool) -> dict[str, Any]:
        """Switch the main alarm on or off.

        Raises:
            CommandError: not a boolean, no alarm to switch, or the store failed.
        """
        if not isinstance(enabled, bool):
            raise CommandError("alarm enabled must be true or false")
        main = self.main_alarm()["id"]
        if main is None:
            raise CommandError("no alarm is set: set an alarm time first")
        self.alarm_enable(int(main), enabled)
        return self.main_alarm()

    def set_smart_window(self, window_min: float) -> dict[str, Any]:
        """Set the main alarm's smart window, minutes in [0, 45].

        Raises:
            CommandError: not a number in range, no alarm, or the store failed.
        """
        if (
            not isinstance(window_min, int | float)
            or isinstance(window_min, bool)
            or not 0.0 <= float(window_min) <= 45.0
        ):
            raise CommandError("smart window must be a number of minutes from 0 to 45")
        self._set_main(window_min=float(window_min))
        return self.main_alarm()

    # -- the light -------------------------------------------------------------------------------
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
        self._d.set_light(cast("LightMode", mode), brightness)
        return {"mode": mode, "brightness": brightness}
