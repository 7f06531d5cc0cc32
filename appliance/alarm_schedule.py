"""Alarm schedules: the `Alarm` model, parsing the user's words, and when the next alarm rings.

Pure functions over frozen values, shared by the CLI (which works on the store directly for now),
the daemon's `AlarmTask`, the backstop and, later, the control API. Nothing here reads a clock:
every "now" is an argument (UTC epoch seconds).

Rules:

- An alarm rings at a local wall-clock time (`appliance.alarm.next_occurrence`, zoneinfo): a time
  that does not exist on a spring-forward day (02:30 in Europe/Berlin on the last Sunday of March)
  rings at the first valid instant after the gap, 03:00; a time that happens twice on a fall-back
  day (02:30 on the last Sunday of October) rings once, at its first occurrence.
- `days`: empty = one-off (the first occurrence after the alarm was set, `created_s`; once it has
  rung it never rings again), else the local weekdays it rings on (0 = Monday … 6 = Sunday).
  The weekday is the local date's of the occurrence.
- `skip_s`: the set time of one occurrence to skip ("skip next"); later ones ring as usual.
- A handled occurrence (rung and dismissed, or missed) is recorded per alarm in the store's
  alarm state (`handled_s`): `next_ring` never returns an occurrence at or before it, so a daemon
  restarted after a ring does not ring the same morning again, while a daemon restarted at 06:58
  still finds 07:00.
- Several alarms: the earliest pending occurrence wins; alarms that share that instant ring as one.
- The config's `[alarm] time` is alarm id 0 (`CONFIG_ALARM_ID`), a daily alarm the `AlarmTask`
  upserts into the store at start (time and window from the config; its enabled / skip state is
  the user's and is kept). Clearing `[alarm] time` removes it. The CLI may skip it or turn it off
  and on, but not set or delete it (edit the config).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from appliance.errors import ApplianceError

__all__ = [
    "CONFIG_ALARM_ID",
    "DAILY",
    "DAY_NAMES",
    "WEEKDAYS",
    "Alarm",
    "AlarmInputError",
    "Ring",
    "ScheduleStore",
    "days_label",
    "delete_alarm",
    "describe",
    "handled_map",
    "next_occurrence",
    "next_ring",
    "occurrence",
    "parse_days",
    "parse_hhmm",
    "parse_time",
    "set_alarm",
    "set_enabled",
    "skip_next",
    "validate_sound",
    "validate_window",
]

CONFIG_ALARM_ID = 0
"""Id of the alarm that mirrors `[alarm] time` in the config."""
DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAILY: frozenset[int] = frozenset(range(7))
WEEKDAYS: frozenset[int] = frozenset(range(5))
_MAX_SEARCH_DAYS = 9  # a weekly alarm's next occurrence is at most 7 days (+ DST slack) away


class AlarmInputError(ApplianceError, ValueError):
    """The user's alarm input is not valid (a bad time, day list, window or id)."""


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm of the schedule.

    Attributes:
        id: Stable id, ≥ 0 (0 = the config's alarm).
        time: Local wall-clock time "HH:MM", 24-hour.
        days: Local weekdays it rings on (0 = Monday … 6 = Sunday); empty = one-off.
        enabled: False = off (kept, never rings).
        skip_s: Set time of one occurrence to skip, UTC epoch s; None = skip nothing.
        window_min: Smart window before the set time, minutes, [0, 45].
        sunrise_min: Sunrise light before the set time, minutes, [0, 60] (0 = none).
        sound: Name of the sound to ring (one of hardware.sounds.SOUNDS); "" = the `[speaker]`
            sound of the config.
        created_s: When it was set, UTC epoch s (a one-off rings at the first occurrence after).
    """

    id: int
    time: str
    days: frozenset[int] = DAILY
    enabled: bool = True
    skip_s: float | None = None
    window_min: float = 30.0
    sunrise_min: float = 30.0
    sound: str = ""
    created_s: float = field(default=0.0)

    @property
    def once(self) -> bool:
        """True for a one-off alarm."""
        return not self.days

    def without_skip(self) -> Alarm:
        """The same alarm with no occurrence skipped."""
        return replace(self, skip_s=None)


@dataclass(frozen=True, slots=True)
class Ring:
    """The next pending ring: when, and which alarms it serves.

    Attributes:
        set_s: The set time (deadline), UTC epoch s.
        alarms: The alarms whose occurrence is at `set_s` (usually one), by id.
    """

    set_s: float
    alarms: tuple[Alarm, ...]

    @property
    def window_s(self) -> float:
        """The smart window, seconds: the widest of the alarms'."""
        return max(a.window_min for a in self.alarms) * 60.0

    @property
    def ids(self) -> tuple[int, ...]:
        """The alarms' ids."""
        return tuple(a.id for a in self.alarms)

    @property
    def sound(self) -> str:
        """The sound to ring: the first alarm's own, "" (the config's) if none has one."""
        return next((a.sound for a in self.alarms if a.sound), "")


# --------------------------------------------------------------------------------------------
# Local wall-clock times


def parse_hhmm(hhmm: str) -> tuple[int, int]:
    """Parse "HH:MM" (00 ≤ HH < 24, 00 ≤ MM < 60) into (hour, minute).

    Raises:
        ValueError: not a valid time of day.
    """
    parts = hhmm.strip().split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"expected HH:MM, got {hhmm!r}")
    hour, minute = int(parts[0]), int(parts[1])
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"expected HH:MM with 00 <= HH < 24 and 00 <= MM < 60, got {hhmm!r}")
    return hour, minute


def _wall(t_s: float, tz: ZoneInfo) -> datetime:
    """Naive local wall-clock time of UTC epoch seconds `t_s`."""
    return datetime.fromtimestamp(t_s, tz=tz).replace(tzinfo=None)


def _resolve(day: date, hour: int, minute: int, tz: ZoneInfo) -> float:
    """Return the instant (UTC epoch s) at which the alarm of local date `day` rings.

    Normal time: the one instant. Repeated time (fall-back): the first one (fold=0). Skipped
    time (spring-forward gap): the first instant after the gap, i.e. the transition itself.
    """
    wall = datetime(day.year, day.month, day.day, hour, minute)
    t0 = wall.replace(tzinfo=tz, fold=0).timestamp()  # offset before a transition
    t1 = wall.replace(tzinfo=tz, fold=1).timestamp()  # offset after a transition
    if t0 <= t1:
        return t0  # normal (equal) or repeated (fold=0 is the earlier instant)
    # In a gap: t1 lies before it (wall time < `wall`), t0 after it (wall time > `wall`). Find
    # the first whole second whose wall time is >= `wall`: the transition (tzdata transitions are
    # whole seconds).
    lo, hi = math.floor(t1), math.ceil(t0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(mid, tz) >= wall:
            hi = mid
        else:
            lo = mid
    return float(hi)


def next_occurrence(hhmm: str, tz: ZoneInfo, after_s: float) -> float:
    """Return the next instant strictly after `after_s` at which the local time is `hhmm`.

    Computed on local calendar dates with zoneinfo (never by adding 86400 s), so a night that
    crosses a DST change still rings at the right local time. The rules for the two DST days:

    - Skipped time (spring forward): a time that does not exist that day, e.g. 02:30 in
      Europe/Berlin on the last Sunday of March (02:00 → 03:00), rings at the first instant after
      the gap: 03:00 local (the transition instant, 01:00 UTC).
    - Repeated time (fall back): a time that happens twice, e.g. 02:30 in Europe/Berlin on the
      last Sunday of October (03:00 → 02:00), rings once, at its first occurrence (fold=0,
      02:30 CEST = 00:30 UTC). The second 02:30 that night does not ring again.

    Args:
        hhmm: Local wall-clock time "HH:MM", 24-hour.
        tz: Time zone of the wall clock.
        after_s: UTC epoch seconds; the result is strictly later.

    Returns:
        UTC epoch seconds of the next occurrence, in (after_s, after_s + ~2 days].

    Raises:
        ValueError: `hhmm` is not a valid time of day, or `after_s` is not finite.
    """
    hour, minute = parse_hhmm(hhmm)
    if not math.isfinite(after_s):
        raise ValueError(f"after_s must be finite, got {after_s!r}")
    today = _wall(after_s, tz).date()
    # Candidates grow with the date, so the first one later than after_s is the answer. Starting
    # a day early is cheap insurance for zones whose gaps move one date's alarm into the next.
    for k in range(-1, 4):
        t = _resolve(today + timedelta(days=k), hour, minute, tz)
        if t > after_s:
            return t
    raise AssertionError("unreachable: no occurrence within four days")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Parsing the user's words


def parse_time(text: str) -> str:
    """Normalize "7:05" / "07:05" to "07:05".

    Raises:
        AlarmInputError: not HH:MM.
    """
    try:
        h, m = parse_hhmm(text)
    except ValueError as e:
        raise AlarmInputError(str(e)) from None
    return f"{h:02d}:{m:02d}"


_RANGE = re.compile(r"^([a-z]{3})-([a-z]{3})$")


def parse_days(text: str) -> frozenset[int]:
    """Parse a day specification.

    Accepted: "once" (one-off: empty set), "daily", "weekdays" (mon-fri), "weekends", a range
    "mon-fri" (wrapping allowed: "fri-mon"), a list "mon,wed,fri", or a mix "mon-wed,sat".

    Raises:
        AlarmInputError: an unknown word or day name.
    """
    t = text.strip().lower()
    if t in ("once", "one-off", "oneoff"):
        return frozenset()
    if t in ("daily", "every-day", "everyday"):
        return DAILY
    if t == "weekdays":
        return WEEKDAYS
    if t == "weekends":
        return frozenset({5, 6})
    days: set[int] = set()
    for part in (p.strip() for p in t.split(",")):
        if (m := _RANGE.match(part)) is not None:
            a, b = (_day(x, text) for x in m.groups())
            k = a
            while True:
                days.add(k)
                if k == b:
                    break
                k = (k + 1) % 7
        else:
            days.add(_day(part, text))
    return frozenset(days)


def _day(name: str, text: str) -> int:
    if name not in DAY_NAMES:
        raise AlarmInputError(
            f"--days: unknown day {name!r} in {text!r} (use once, daily, weekdays, mon-fri or "
            "mon,wed,...)"
        )
    return DAY_NAMES.index(name)


def days_label(days: frozenset[int]) -> str:
    """The short label of a day set: once, daily, weekdays, weekends or "mon,wed,fri"."""
    if not days:
        return "once"
    if days == DAILY:
        return "daily"
    if days == WEEKDAYS:
        return "weekdays"
    if days == frozenset({5, 6}):
        return "weekends"
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def validate_sound(name: str) -> str:
    """Check an alarm's sound: a shipped sound, or "" for the config's `[speaker] sound`.

    Raises:
        AlarmInputError: not a shipped sound.
    """
    from hardware.sounds import SOUNDS

    if name and name not in SOUNDS:
        raise AlarmInputError(f"unknown sound {name!r}; known: {', '.join(SOUNDS)}")
    return name


def validate_window(window_min: float) -> float:
    """Check a smart window, minutes, [0, 45].

    Raises:
        AlarmInputError: out of range or not finite.
    """
    if not (math.isfinite(window_min) and 0.0 <= window_min <= 45.0):
        raise AlarmInputError(f"--window: must be 0 to 45 minutes, got {window_min:g}")
    return float(window_min)


# --------------------------------------------------------------------------------------------
# When


def _local_weekday(t_s: float, tz: ZoneInfo) -> int:
    return datetime.fromtimestamp(t_s, tz=tz).weekday()


def occurrence(
    alarm: Alarm, tz: ZoneInfo, after_s: float, handled_s: float | None = None
) -> float | None:
    """The alarm's first pending occurrence strictly after `after_s`, UTC epoch s, or None.

    Pending: enabled, on one of its days, not the skipped one, and later than `handled_s` (the
    last occurrence already rung and over). A one-off has exactly one occurrence, the first after
    `created_s`; None once it is handled or lies at or before `after_s`.

    Args:
        alarm: The alarm.
        tz: Local time zone.
        after_s: UTC epoch seconds; the result is strictly later.
        handled_s: The alarm's last handled occurrence (store state), or None.
    """
    if not alarm.enabled:
        return None
    floor = -math.inf if handled_s is None else handled_s
    if alarm.once:
        t = next_occurrence(alarm.time, tz, alarm.created_s)
        ok = t > after_s and t > floor and t != alarm.skip_s
        return t if ok else None
    # Never an occurrence before the alarm existed: a daily 07:30 set at 07:35 starts tomorrow.
    t = max(after_s, alarm.created_s)
    for _ in range(_MAX_SEARCH_DAYS):
        t = next_occurrence(alarm.time, tz, t)
        if _local_weekday(t, tz) in alarm.days and t != alarm.skip_s and t > floor:
            return t
    return None


def next_ring(
    alarms: Iterable[Alarm],
    tz: ZoneInfo,
    after_s: float,
    handled: Mapping[int, float] | None = None,
) -> Ring | None:
    """The earliest pending ring over all alarms, strictly after `after_s`.

    Args:
        alarms: The schedule.
        tz: Local time zone.
        after_s: UTC epoch seconds. The `AlarmTask` passes `now − ring_max` so that an occurrence
            the daemon was down for (and nobody handled) still rings when it comes back.
        handled: Alarm id → its last handled occurrence, UTC epoch s (store state).

    Returns:
        The ring, with every alarm whose occurrence is at that same instant; None if nothing is
        pending (no alarm, all off, one-offs spent).
    """
    h = handled or {}
    best: float | None = None
    hits: list[Alarm] = []
    for a in alarms:
        t = occurrence(a, tz, after_s, h.get(a.id))
        if t is None:
            continue
        if best is None or t < best:
            best, hits = t, [a]
        elif t == best:
            hits.append(a)
    if best is None:
        return None
    return Ring(best, tuple(sorted(hits, key=lambda a: a.id)))


# --------------------------------------------------------------------------------------------
# Editing the schedule (the CLI now, the control API later)


class ScheduleStore(Protocol):
    """The part of `appliance.store.Store` the schedule functions use."""

    def alarms(self) -> list[Alarm]:
        """Every alarm, by id."""
        ...

    def alarm(self, alarm_id: int) -> Alarm | None:
        """One alarm, or None."""
        ...

    def put_alarm(self, alarm: Alarm, *, new: bool = False) -> Alarm:
        """Insert or replace an alarm."""
        ...

    def delete_alarm(self, alarm_id: int) -> bool:
        """Delete an alarm; True if it existed."""
        ...

    def alarm_states(self) -> Mapping[int, _HasHandled]:
        """Each alarm's latest occurrence state."""
        ...


class _HasHandled(Protocol):
    @property
    def set_s(self) -> float: ...

    @property
    def handled(self) -> bool: ...


def handled_map(store: ScheduleStore) -> dict[int, float]:
    """Alarm id → its last handled occurrence, UTC epoch s, from the store's state."""
    return {aid: st.set_s for aid, st in store.alarm_states().items() if st.handled}


def _get(store: ScheduleStore, alarm_id: int) -> Alarm:
    a = store.alarm(alarm_id)
    if a is None:
        raise AlarmInputError(f"no alarm with id {alarm_id} (see `appliance alarm list`)")
    return a


def set_alarm(
    store: ScheduleStore,
    now_s: float,
    time: str,
    *,
    days: str = "daily",
    window_min: float | None = None,
    alarm_id: int | None = None,
    sound: str | None = None,
) -> Alarm:
    """Create an alarm, or change alarm `alarm_id` (which is then on, with no skip).

    Args:
        store: The schedule's store.
        now_s: Now, UTC epoch s (a one-off rings at the first occurrence after it).
        time: "HH:MM".
        days: As `parse_days`.
        window_min: Smart window, minutes, [0, 45]; None = 30 for a new alarm, unchanged for an
            existing one.
        alarm_id: The alarm to change; None = a new alarm.
        sound: A shipped sound (`hardware.sounds.SOUNDS`) or "" (the config's `[speaker]`
            sound); None = "" for a new alarm, unchanged for an existing one.

    Raises:
        AlarmInputError: a bad time, days, window or sound; an unknown id; id 0 (the config's
            alarm).
        StoreError: the store failed.
    """
    t = parse_time(time)
    d = parse_days(days)
    w = None if window_min is None else validate_window(window_min)
    if sound:
        validate_sound(sound)
    if alarm_id is None:
        new = Alarm(
            id=-1,
            time=t,
            days=d,
            window_min=30.0 if w is None else w,
            sound=sound or "",
            created_s=now_s,
        )
        return store.put_alarm(new, new=True)
    if alarm_id == CONFIG_ALARM_ID:
        raise AlarmInputError("alarm 0 is the config's [alarm] time: change it in the config")
    old = _get(store, alarm_id)
    return store.put_alarm(
        replace(
            old,
            time=t,
            days=d,
            enabled=True,
            skip_s=None,
            window_min=old.window_min if w is None else w,
            sound=old.sound if sound is None else sound,
            created_s=now_s,
        )
    )


def set_enabled(store: ScheduleStore, alarm_id: int | None, enabled: bool) -> list[Alarm]:
    """Turn one alarm (or, with None, every alarm) on or off; turning on also clears a skip.

    Raises:
        AlarmInputError: an unknown id.
        StoreError: the store failed.
    """
    targets = store.alarms() if alarm_id is None else [_get(store, alarm_id)]
    out = []
    for a in targets:
        b = replace(a, enabled=enabled, skip_s=None if enabled else a.skip_s)
        out.append(store.put_alarm(b) if b != a else a)
    return out


def skip_next(
    store: ScheduleStore, tz: ZoneInfo, now_s: float, alarm_id: int | None = None
) -> tuple[Alarm, float]:
    """Skip the next occurrence of alarm `alarm_id` (None: of the alarm that rings next).

    Returns:
        The alarm, and the set time it will not ring at, UTC epoch s.

    Raises:
        AlarmInputError: an unknown id, an alarm that is off or has no occurrence left, or no
            pending alarm at all.
        StoreError: the store failed.
    """
    handled = handled_map(store)
    if alarm_id is None:
        ring = next_ring(store.alarms(), tz, now_s, handled)
        if ring is None:
            raise AlarmInputError("no alarm is pending: nothing to skip")
        alarm = ring.alarms[0]
    else:
        alarm = _get(store, alarm_id)
    t = occurrence(alarm.without_skip(), tz, now_s, handled.get(alarm.id))
    if t is None:
        raise AlarmInputError(f"alarm {alarm.id} is off or has no occurrence left to skip")
    return store.put_alarm(replace(alarm, skip_s=t)), t


def delete_alarm(store: ScheduleStore, alarm_id: int) -> None:
    """Delete alarm `alarm_id` (not 0, the config's).

    Raises:
        AlarmInputError: an unknown id, or id 0.
        StoreError: the store failed.
    """
    if alarm_id == CONFIG_ALARM_ID:
        raise AlarmInputError("alarm 0 is the config's [alarm] time: clear it in the config")
    if not store.delete_alarm(alarm_id):
        raise AlarmInputError(f"no alarm with id {alarm_id} (see `appliance alarm list`)")


def describe(
    alarms: Iterable[Alarm], tz: ZoneInfo, now_s: float, handled: Mapping[int, float]
) -> list[dict[str, object]]:
    """The schedule as JSON-friendly rows (what `appliance alarm list --json` prints).

    Each row: id, time, days, enabled, window_min, sunrise_min, sound, skip_next (the local time
    of the skipped occurrence, or null), next_ring (local ISO time, or null), next_ring_s.
    """
    rows: list[dict[str, object]] = []
    for a in alarms:
        t = occurrence(a, tz, now_s, handled.get(a.id))
        skip = a.skip_s if a.skip_s is not None and a.skip_s > now_s else None
        rows.append(
            {
                "id": a.id,
                "time": a.time,
                "days": days_label(a.days),
                "enabled": a.enabled,
                "window_min": a.window_min,
                "sunrise_min": a.sunrise_min,
                "sound": a.sound,
                "skip_next": None if skip is None else _iso(skip, tz),
                "next_ring": None if t is None else _iso(t, tz),
                "next_ring_s": t,
            }
        )
    return rows


def describe_store(store: ScheduleStore, tz: ZoneInfo, now_s: float) -> list[dict[str, object]]:
    """`describe` of the store's schedule, with its handled occurrences.

    Raises:
        StoreError: the store cannot be read.
    """
    return describe(store.alarms(), tz, now_s, handled_map(store))


def main_alarm(rows: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """The alarm Home Assistant's alarm entities show and set, from `describe`'s rows.

    That is the config's alarm (id 0) if there is one, else the lowest-numbered alarm a user set,
    else {"id": None, ...}.
    """
    if not rows:
        return {"id": None, "time": None, "enabled": False, "window_min": None}
    row = min(rows, key=lambda r: int(str(r["id"])))
    return {k: row[k] for k in ("id", "time", "enabled", "window_min", "next_ring")}


def _iso(t_s: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(t_s, tz=tz).isoformat(timespec="minutes")
