"""The smart alarm: when to ring, the state machine of one alarm, and the task that rings it.

Three layers, from pure to wired:

- `appliance.alarm_schedule` (re-exported here: `next_occurrence`, `parse_hhmm`) says when the
  next alarm is, across several alarms and DST changes.
- `SmartAlarm` is the state machine of one armed occurrence. It is pure: time comes in as
  arguments (UTC epoch seconds) and it never reads a clock. Inside the smart window it asks a
  `WakePolicy` (`appliance.wake_policy`; default the naive first-wakeable one, the daemon uses
  `LatestSafePolicy`) at each wakeable moment — a light or wake epoch, or a movement burst —
  whether to ring now; and it always rings at the set time (the deadline) if it has not rung by
  then, whether or not any epoch ever arrived and whatever the policy says.
- `AlarmTask` is the asyncio task of the daemon: it reads the schedule (from the store, re-read
  every `reload_s` and on `reload()`; the config's alarm if the store fails), arms the next
  occurrence, ticks the state machine at least once a second from the injected `Clock`, drives
  the `Speaker` (with a volume ramp if the speaker has `set_volume`) and writes each occurrence's
  state to the store, so that a daemon restarted at 06:58 still rings at 07:00 and a dismissed
  alarm never rings twice. The deadline path needs nothing but the clock and the speaker.

Events (`SessionEvent.kind`; detail is a small JSON string), with the Sleep as Android automation
event each one corresponds to (docs.sleep.urbandroid.org/services/automation.html):

- `smart_window_open`: the smart window opens (set_s, ids); SaA `smart_period`.
- `alarm_ringing`: it starts ringing (reason: smart, deadline, snooze or resumed; set_s, ids);
  SaA `alarm_alert_start`.
- `alarm_snoozed`: snoozed (until_s); SaA `alarm_snooze_clicked`.
- `alarm_dismissed`: dismissed (rang_at_s); SaA `alarm_alert_dismiss`.
- `alarm_missed`: rang `ring_max` without being stopped, or first seen too late (no SaA event).
- `alarm_speaker_failed`: a play failed (error), once per ring (no SaA event).

Rule of the product: a user forgives a wrong hypnogram, never an alarm that did not ring. So every
error on the way to the speaker is caught, logged and retried a second later.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import numpy as np

from appliance.alarm_schedule import (
    CONFIG_ALARM_ID,
    DAILY,
    Alarm,
    Ring,
    next_occurrence,
    next_ring,
    parse_hhmm,
)
from appliance.errors import StoreError
from appliance.frames import EPOCH_S, SessionEvent, Stage, StagedEpoch, TrackedSecond
from appliance.wake_policy import FirstWakeablePolicy, LatestSafePolicy, WakePolicy, belief_of

if TYPE_CHECKING:
    from appliance.clock import Clock
    from appliance.config import AlarmConfig
    from appliance.store import AlarmStateRow, Store
    from hardware.speaker import Speaker

__all__ = [
    "AROUSAL_BELIEF",
    "DEFAULT_MAX_EPOCH_AGE_S",
    "DEFAULT_MOVEMENT_MM_S",
    "DEFAULT_RING_MAX_S",
    "WAKEABLE_STAGES",
    "AlarmState",
    "AlarmTask",
    "RingReason",
    "SmartAlarm",
    "SoundChoice",
    "VolumeControl",
    "config_alarm",
    "next_occurrence",
    "parse_hhmm",
]

log = logging.getLogger(__name__)

AlarmState = Literal["armed", "window", "ringing", "snoozed", "dismissed", "missed"]
RingReason = Literal["smart", "deadline", "snooze", "resumed"]

DEFAULT_RING_MAX_S = 30 * 60.0
"""How long an alarm rings without being stopped before it gives up, seconds."""
DEFAULT_MAX_EPOCH_AGE_S = 3 * EPOCH_S
"""An epoch that ended longer ago than this does not ring (a lagging pipeline), seconds."""
DEFAULT_MOVEMENT_MM_S = 8.0
"""Movement energy (`Target.movement`, mm/s) of a body movement: ~ the 97th percentile of a
night's seconds on the simulator (a turn in bed, an arousal), far above breathing's."""
WAKEABLE_STAGES: frozenset[int] = frozenset({int(Stage.WAKE), int(Stage.LIGHT)})
"""Hypnogram codes the smart window may ring on: already awake, or light sleep."""
AROUSAL_BELIEF = np.array([0.5, 0.5, 0.0, 0.0])
"""Stage belief (wake, light, deep, REM) at a movement burst: an arousal, wake or light sleep."""

_TERMINAL: frozenset[str] = frozenset({"dismissed", "missed"})
_BURST_WINDOW_S = 5
_BURST_MIN_S = 2


@runtime_checkable
class SoundChoice(Protocol):
    """A speaker that can ring another sound than its configured one (an alarm's own sound)."""

    def set_sound(self, name: str) -> None:
        """Ring the shipped sound `name` from the next play on; "" = the configured sound."""
        ...


@runtime_checkable
class VolumeControl(Protocol):
    """A speaker whose volume can be set (the ramp); speakers without it play at full volume."""

    def set_volume(self, fraction: float) -> None:
        """Set the playback volume, a fraction of full scale in [0, 1]."""
        ...


def config_alarm(cfg: AlarmConfig, created_s: float = 0.0) -> Alarm | None:
    """The config's `[alarm] time` as alarm 0: a daily alarm (None when `time` is "")."""
    if not cfg.time:
        return None
    return Alarm(
        id=CONFIG_ALARM_ID,
        time=cfg.time,
        days=DAILY,
        window_min=cfg.window_min,
        sunrise_min=cfg.sunrise_min,
        created_s=created_s,
    )


# --------------------------------------------------------------------------------------------
# Whether: the state machine of one armed alarm


class SmartAlarm:
    """The state machine of one armed occurrence: smart window, smart ring, fail-safe deadline.

    States: "armed" (before the window) → "window" (smart window open) → "ringing" ⇄ "snoozed" →
    "dismissed" or "missed" (rang `ring_max_s` without being stopped). `update_time` must be called
    at least once a second; `update_epoch` with each live-stager epoch as it completes (all night:
    the policy filters tonight's epochs into its belief); `update_second` with each radar second.

    When it rings:

    - Smart: in the window (window_start_s ≤ now_s < set_s), at a wakeable moment the policy
      accepts: an epoch whose stage is LIGHT or WAKE and that ends inside the window no more than
      `max_epoch_age_s` before now, or a movement burst (≥ 2 of the last 5 seconds above
      `movement_mm_s`). DEEP, REM, UNSCORED and ABSENT epochs never ring (ABSENT: nobody is in bed
      to wake gently; the deadline still rings).
    - Deadline: at the first `update_time` with now_s ≥ set_s if it has not rung, epochs or not,
      whatever the policy. Ticks at ≤ 1 s spacing make it ring within one tick of set_s.
    - Too late to help: if the first `update_time` at or after set_s is more than `ring_max_s`
      late (the clock was stepped forward, or the daemon was down), it goes straight to "missed"
      without ringing: ringing long after the set time would only surprise.
    - Snooze: `snooze` silences a ringing alarm until now + snooze_s, then it rings again
      (reason "snooze"); `ring_max_s` counts from each (re)ring.

    It rings at most once per (re)ring; `dismiss` only ends a ringing or snoozed alarm (a stray
    press in the night must not cancel the morning alarm).

    Args:
        set_s: The set time (deadline), UTC epoch seconds.
        window_s: Length of the smart window before `set_s`, seconds, ≥ 0 (0 = no smart ring).
        ring_max_s: How long it rings unstopped before "missed", seconds, > 0.
        max_epoch_age_s: Oldest epoch end (before now) that may still ring, seconds, ≥ 0.
        policy: Decides at wakeable moments; None = ring at the first one.
        movement_mm_s: Movement energy of a burst, mm/s, > 0.

    Raises:
        ValueError: a non-finite time or a negative length.
    """

    def __init__(
        self,
        set_s: float,
        window_s: float,
        ring_max_s: float = DEFAULT_RING_MAX_S,
        *,
        max_epoch_age_s: float = DEFAULT_MAX_EPOCH_AGE_S,
        policy: WakePolicy | None = None,
        movement_mm_s: float = DEFAULT_MOVEMENT_MM_S,
    ) -> None:
        for name, v in (("set_s", set_s), ("window_s", window_s), ("ring_max_s", ring_max_s)):
            if not math.isfinite(v):
                raise ValueError(f"{name} must be finite, got {v!r}")
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0, got {window_s!r}")
        if ring_max_s <= 0:
            raise ValueError(f"ring_max_s must be > 0, got {ring_max_s!r}")
        if not max_epoch_age_s >= 0:
            raise ValueError(f"max_epoch_age_s must be >= 0, got {max_epoch_age_s!r}")
        if not movement_mm_s > 0:
            raise ValueError(f"movement_mm_s must be > 0, got {movement_mm_s!r}")
        self._set_s = float(set_s)
        self._window_s = float(window_s)
        self._ring_max_s = float(ring_max_s)
        self._max_epoch_age_s = float(max_epoch_age_s)
        self._policy: WakePolicy = policy if policy is not None else FirstWakeablePolicy()
        self._movement_mm_s = float(movement_mm_s)
        self._moves: deque[tuple[float, bool]] = deque(maxlen=_BURST_WINDOW_S)
        self._state: AlarmState = "armed"
        self._rang_at_s: float | None = None
        self._first_rang_at_s: float | None = None
        self._reason: RingReason | None = None
        self._ended_at_s: float | None = None
        self._snooze_until_s: float | None = None

    def __repr__(self) -> str:
        return (
            f"SmartAlarm(set_s={self._set_s!r}, window_s={self._window_s!r}, "
            f"state={self._state!r}, rang_at_s={self._rang_at_s!r}, reason={self._reason!r})"
        )

    @property
    def set_s(self) -> float:
        """The set time (deadline), UTC epoch seconds."""
        return self._set_s

    @property
    def window_s(self) -> float:
        """Length of the smart window, seconds."""
        return self._window_s

    @property
    def window_start_s(self) -> float:
        """Start of the smart window, `set_s - window_s`, UTC epoch seconds."""
        return self._set_s - self._window_s

    @property
    def ring_max_s(self) -> float:
        """How long it rings unstopped before "missed", seconds."""
        return self._ring_max_s

    @property
    def state(self) -> AlarmState:
        """One of "armed", "window", "ringing", "snoozed", "dismissed" or "missed"."""
        return self._state

    @property
    def done(self) -> bool:
        """True once the alarm is over ("dismissed" or "missed")."""
        return self._state in _TERMINAL

    @property
    def pending(self) -> bool:
        """True before it has first rung ("armed" or "window")."""
        return self._state in ("armed", "window")

    @property
    def rang_at_s(self) -> float | None:
        """When it (last) started ringing, UTC epoch seconds; None if it has not rung."""
        return self._rang_at_s

    @property
    def first_rang_at_s(self) -> float | None:
        """When it first rang (before any snooze), UTC epoch seconds; None if it has not rung."""
        return self._first_rang_at_s

    @property
    def reason(self) -> RingReason | None:
        """Why it (last) rang: "smart", "deadline", "snooze" or "resumed"; None before."""
        return self._reason

    @property
    def ended_at_s(self) -> float | None:
        """When it was dismissed or missed, UTC epoch seconds; None while not over."""
        return self._ended_at_s

    @property
    def snooze_until_s(self) -> float | None:
        """When a snoozed alarm rings again, UTC epoch seconds; None unless snoozed."""
        return self._snooze_until_s if self._state == "snoozed" else None

    def restore(self, status: str, rang_at_s: float | None, snooze_until_s: float | None) -> None:
        """Continue an occurrence a previous run left ringing or snoozed (store state).

        A ringing one rings again at once (the restart silenced it), counting `ring_max_s` from
        its stored start; a snoozed one waits for the end of its snooze.
        """
        if status == "ringing" and rang_at_s is not None:
            self._state = "ringing"
            self._rang_at_s = self._first_rang_at_s = float(rang_at_s)
            self._reason = "resumed"
        elif status == "snoozed" and snooze_until_s is not None:
            self._state = "snoozed"
            self._first_rang_at_s = rang_at_s
            self._rang_at_s = rang_at_s
            self._snooze_until_s = float(snooze_until_s)

    def update_time(self, now_s: float) -> str | None:
        """Advance the alarm to `now_s`: open the window, ring at the deadline, re-ring, give up.

        Args:
            now_s: Current time, UTC epoch seconds (call at least once a second).

        Returns:
            "window_open" (once, when the window opens without ringing at the same tick), "ring"
            (the deadline or the end of a snooze rang), "missed" (it rang `ring_max_s`
            unstopped, or a deadline or snooze end was first seen more than `ring_max_s` late),
            else None.
        """
        if self._state in ("armed", "window"):
            if now_s >= self._set_s:
                if now_s - self._set_s > self._ring_max_s:
                    log.warning(
                        "alarm deadline first seen %.0f s late (clock stepped or daemon down): "
                        "not ringing set_s=%.0f now_s=%.0f",
                        now_s - self._set_s,
                        self._set_s,
                        now_s,
                    )
                    self._end("missed", now_s)
                    return "missed"
                return self._ring(now_s, "deadline")
            if self._state == "armed" and now_s >= self.window_start_s:
                self._state = "window"
                return "window_open"
            return None
        if self._state == "snoozed" and self._snooze_until_s is not None:
            if now_s < self._snooze_until_s:
                return None
            if now_s - self._snooze_until_s > self._ring_max_s:
                self._end("missed", now_s)
                return "missed"
            return self._ring(now_s, "snooze")
        rang_at_s = self._rang_at_s
        if (
            self._state == "ringing"
            and rang_at_s is not None
            and now_s - rang_at_s >= self._ring_max_s
        ):
            self._end("missed", now_s)
            return "missed"
        return None

    def update_epoch(self, epoch: StagedEpoch, now_s: float) -> str | None:
        """Offer a completed live-stager epoch; ring if the policy takes this wakeable moment.

        Args:
            epoch: The epoch (`t_s` is its start, UTC epoch s; it ends 30 s later).
            now_s: Current time, UTC epoch seconds.

        Returns:
            "ring" if this epoch rang the alarm (reason "smart"), else None.
        """
        try:
            self._policy.observe(epoch)
        except Exception:
            log.exception("wake policy failed to observe an epoch")
        if not self._in_window(now_s) or epoch.stage not in WAKEABLE_STAGES:
            return None
        end_s = epoch.t_s + EPOCH_S
        if not (self.window_start_s <= end_s <= self._set_s):
            return None
        if now_s - end_s > self._max_epoch_age_s:
            return None
        return self._ask(belief_of(epoch), now_s)

    def update_second(self, t_s: float, movement: float | None, now_s: float) -> str | None:
        """Offer one radar second of the user; a movement burst in the window is a wakeable moment.

        Args:
            t_s: The second's time, UTC epoch s.
            movement: The user's movement energy that second, mm/s; None if the user is not seen.
            now_s: Current time, UTC epoch seconds.

        Returns:
            "ring" if this burst rang the alarm (reason "smart"), else None.
        """
        moving = movement is not None and math.isfinite(movement) and movement > self._movement_mm_s
        self._moves.append((t_s, moving))
        if not moving or not self._in_window(now_s) or now_s - t_s > self._max_epoch_age_s:
            return None
        recent = sum(1 for ts, m in self._moves if m and t_s - ts < _BURST_WINDOW_S)
        if recent != _BURST_MIN_S:  # once per burst: when it becomes one
            return None
        return self._ask(AROUSAL_BELIEF, now_s)

    def snooze(self, now_s: float, snooze_s: float) -> str | None:
        """Snooze a ringing alarm for `snooze_s` seconds (> 0).

        Returns:
            "snoozed" if it was ringing, else None (nothing changes).
        """
        if self._state != "ringing" or not snooze_s > 0:
            return None
        self._state = "snoozed"
        self._snooze_until_s = now_s + float(snooze_s)
        return "snoozed"

    def dismiss(self, now_s: float) -> str | None:
        """Dismiss a ringing or snoozed alarm.

        Returns:
            "dismissed" if it was ringing or snoozed, else None (nothing changes).
        """
        if self._state not in ("ringing", "snoozed"):
            return None
        self._end("dismissed", now_s)
        return "dismissed"

    def stop(self, now_s: float) -> str | None:
        """Alias of `dismiss`."""
        return self.dismiss(now_s)

    def _in_window(self, now_s: float) -> bool:
        return self._state in ("armed", "window") and self.window_start_s <= now_s < self._set_s

    def _ask(self, belief: np.ndarray, now_s: float) -> str | None:
        try:
            ring = self._policy.ring_now(belief, now_s, self.window_start_s, self._set_s)
        except Exception:
            log.exception("wake policy failed; ringing at this wakeable moment")
            ring = True
        return self._ring(now_s, "smart") if ring else None

    def _ring(self, now_s: float, reason: RingReason) -> str:
        self._state = "ringing"
        self._rang_at_s = now_s
        if self._first_rang_at_s is None:
            self._first_rang_at_s = now_s
        self._reason = reason
        self._snooze_until_s = None
        return "ring"

    def _end(self, state: AlarmState, now_s: float) -> None:
        self._state = state
        self._ended_at_s = now_s


# --------------------------------------------------------------------------------------------
# Doing it: the daemon's task


_SEED_KEY = "alarm.config_seed"
"""Store setting: the `[alarm]` values alarm 0 was last seeded from (time, window, sunrise)."""


class AlarmTask:
    """The daemon's alarm: reads the schedule, arms the next occurrence and rings the speaker.

    `run` loops until cancelled: it plans the next ring over every alarm (`alarm_schedule.
    next_ring`, looking back `ring_max` so that an occurrence the daemon was down for still
    rings), builds a `SmartAlarm` with the task's `WakePolicy` (one per task, so it learns from
    the whole night), and sleeps on the clock in steps of at most `tick_s` (1 s), waking exactly at
    the window start, the set time and every due (re)play. While ringing it calls
    `speaker.play(now_s)` at once and every `repeat_s` (and `set_volume` along the ramp, if the
    speaker has it) until `dismiss`/`snooze` or `cfg.ring_max_min`. A `speaker.play` that raises
    is logged, reported once per ring as "alarm_speaker_failed", and retried a tick later.

    The schedule comes from `store` (alarm 0, the config's, is upserted into it at start) and is
    re-read every `reload_s` and after `reload()`; a change moves an occurrence that has not rung
    yet. If the store fails, the last schedule read (or, before any, the config's alarm) is used,
    and handled occurrences are remembered in memory: the store is never needed to ring.

    `feed`, `feed_second`, `snooze`, `dismiss` and `reload` are synchronous and must be called from
    the event loop's thread; they never raise.

    Args:
        clock: The injected clock (UTC epoch seconds).
        speaker: The speaker to ring.
        cfg: The alarm configuration.
        tz: Local time zone of the alarms.
        on_event: Called with each event; its exceptions are logged and swallowed.
        on_armed: Called with the set time (UTC s) each time an occurrence is armed, and with
            None when none is left (the daemon announces the next alarm); its exceptions are
            logged and swallowed.
        store: The store holding the schedule and ring state; None = the config's alarm only.
        policy: The wake policy; None = `LatestSafePolicy()`.
        tick_s: Longest sleep between checks, seconds, (0, 1].
        repeat_s: Interval between plays while ringing, seconds, > 0.
        reload_s: How often the schedule is re-read from the store, seconds, > 0.
    """

    def __init__(
        self,
        clock: Clock,
        speaker: Speaker,
        cfg: AlarmConfig,
        tz: ZoneInfo,
        on_event: Callable[[SessionEvent], None] | None = None,
        on_armed: Callable[[float | None], None] | None = None,
        *,
        store: Store | None = None,
        policy: WakePolicy | None = None,
        tick_s: float = 1.0,
        repeat_s: float = 4.0,
        reload_s: float = 30.0,
    ) -> None:
        if not 0 < tick_s <= 1.0:
            raise ValueError(f"tick_s must be in (0, 1], got {tick_s!r}")
        if not repeat_s > 0:
            raise ValueError(f"repeat_s must be > 0, got {repeat_s!r}")
        if not reload_s > 0:
            raise ValueError(f"reload_s must be > 0, got {reload_s!r}")
        self._clock = clock
        self._speaker = speaker
        self._cfg = cfg
        self._tz = tz
        self._on_event = on_event
        self._on_armed = on_armed
        self._store = store
        self._policy: WakePolicy = policy if policy is not None else LatestSafePolicy()
        self._tick_s = float(tick_s)
        self._repeat_s = float(repeat_s)
        self._reload_s = float(reload_s)
        self._ring_max_s = cfg.ring_max_min * 60.0
        self._alarm: SmartAlarm | None = None
        self._ring: Ring | None = None
        self._last_ring_s: float | None = None
        self._next_play_s = math.inf
        self._play_failed = False
        self._schedule: list[Alarm] = []
        self._handled: dict[int, float] = {}
        self._states: dict[int, AlarmStateRow] = {}
        self._seeded = False
        self._reload_now = False
        self._next_reload_s = -math.inf
        self._store_failing = False

    # -- what others read and call ------------------------------------------------------------

    @property
    def alarm(self) -> SmartAlarm | None:
        """The current occurrence's state machine, or None (nothing armed)."""
        return self._alarm

    @property
    def ring(self) -> Ring | None:
        """The current occurrence (set time and alarms), or None."""
        return self._ring

    @property
    def next_ring_s(self) -> float | None:
        """Set time of the armed occurrence that has not rung yet, UTC epoch s; None otherwise."""
        a = self._alarm
        if a is None or not a.pending:
            return None
        return a.set_s

    @property
    def last_ring_s(self) -> float | None:
        """When the alarm last started ringing, UTC epoch seconds; None if never."""
        return self._last_ring_s

    @property
    def schedule(self) -> tuple[Alarm, ...]:
        """The schedule as last read (the config's alarm if the store was never readable)."""
        return tuple(self._schedule)

    def reload(self) -> None:
        """Re-read the schedule from the store at the next tick (after a CLI/API change)."""
        self._reload_now = True

    def feed(self, epoch: StagedEpoch) -> None:
        """Hand a completed live-stager epoch to the armed alarm (may ring it). Never raises."""
        try:
            alarm = self._alarm
            if alarm is None:
                self._policy.observe(epoch)  # keep learning the night between occurrences
                return
            now = self._clock.now()
            if alarm.update_epoch(epoch, now) == "ring":
                self._on_ring(alarm, now)
        except Exception:
            log.exception("alarm feed failed; the deadline still rings")

    def feed_second(self, second: TrackedSecond) -> None:
        """Hand a radar second (the user's movement) to the armed alarm. Never raises."""
        try:
            alarm = self._alarm
            if alarm is None:
                return
            now = self._clock.now()
            movement = None if second.user is None else second.user.movement
            if alarm.update_second(second.t_s, movement, now) == "ring":
                self._on_ring(alarm, now)
        except Exception:
            log.exception("alarm feed_second failed; the deadline still rings")

    def snooze(self, minutes: float | None = None) -> bool:
        """Snooze the ringing alarm for `minutes` (default `cfg.snooze_min`).

        Returns:
            True if an alarm was ringing; False (and nothing changes) otherwise.
        """
        try:
            alarm = self._alarm
            now = self._clock.now()
            snooze_s = (self._cfg.snooze_min if minutes is None else float(minutes)) * 60.0
            if alarm is None or alarm.snooze(now, snooze_s) != "snoozed":
                log.info("alarm snooze ignored: not ringing")
                return False
            self._silence()
            until = alarm.snooze_until_s
            log.info("alarm snoozed for %.0f s", snooze_s)
            self._emit(now, "alarm_snoozed", {"until_s": until, "set_s": alarm.set_s})
            self._save("snoozed", alarm, now)
            return True
        except Exception:
            log.exception("alarm snooze failed")
            return False

    def dismiss(self) -> bool:
        """Dismiss the ringing (or snoozed) alarm and silence the speaker.

        Returns:
            True if an alarm was ringing or snoozed; False (and nothing changes) otherwise.
        """
        try:
            alarm = self._alarm
            now = self._clock.now()
            if alarm is None or alarm.dismiss(now) != "dismissed":
                log.info("alarm dismiss ignored: not ringing")
                return False
            self._silence()
            log.info("alarm dismissed after %.0f s", now - (alarm.first_rang_at_s or now))
            self._emit(now, "alarm_dismissed", {"rang_at_s": alarm.first_rang_at_s})
            self._handle(alarm, "dismissed", now)
            return True
        except Exception:
            log.exception("alarm dismiss failed")
            return False

    def stop(self) -> bool:
        """Alias of `dismiss` (older callers)."""
        return self.dismiss()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Plan, watch and ring, one occurrence after the other, until cancelled."""
        if self._store is None and not self._cfg.time:
            log.info("no alarm time configured and no schedule store")
            return
        if not self._speaker.available():
            log.warning("speaker not available; the alarm will keep trying to ring it")
        try:
            resume = self._alarm if self._alarm is not None and not self._alarm.done else None
            if resume is not None and resume.state == "ringing":
                self._next_play_s = self._clock.now()  # the crash silenced it: sound again
            first = True
            while True:
                now = self._clock.now()
                # A fresh plan at start and after each occurrence; while idle, every reload_s.
                self._maybe_reload(now, force=first or self._alarm is not None)
                first = False
                alarm = resume or self._arm(now)
                resume = None
                if alarm is None:
                    await self._clock.sleep(self._tick_s)
                    continue
                last_now = now
                while not alarm.done:
                    now = self._clock.now()
                    stepped_back = now < last_now - self._tick_s
                    last_now = now
                    # A past deadline is the state machine's to ring or miss, not the plan's.
                    reloaded = self._maybe_reload(now, force=stepped_back)
                    if reloaded and alarm.pending and now < alarm.set_s:
                        alarm = self._rearm_if_moved(alarm, now)
                        if alarm is None:
                            break
                    self._tick(alarm, now)
                    await self._clock.sleep(self._delay(alarm, now))
        finally:
            if self._alarm is not None and self._alarm.state == "ringing":
                self._silence()

    # -- internals: the schedule ---------------------------------------------------------------

    def _maybe_reload(self, now: float, *, force: bool = False) -> bool:
        """Re-read the schedule if due; return True if it was read (or tried)."""
        if not (force or self._reload_now or now >= self._next_reload_s):
            return False
        self._reload_now = False
        self._next_reload_s = now + self._reload_s
        self._load(now)
        return True

    def _load(self, now: float) -> None:
        store = self._store
        fallback = config_alarm(self._cfg)
        if store is None:
            self._schedule = [fallback] if fallback is not None else []
            return
        try:
            if not self._seeded:
                self._seed(store, now)
                self._seeded = True
            alarms = store.alarms()
            states = store.alarm_states()
            store.beat(now)
        except StoreError as e:
            if not self._store_failing:
                log.error("alarm store unavailable, using the last schedule read: %s", e)
                self._store_failing = True
            if not self._schedule and fallback is not None:
                self._schedule = [fallback]
            return
        if self._store_failing:
            log.info("alarm store available again")
            self._store_failing = False
        self._schedule = alarms
        self._states = states
        for aid, st in states.items():
            if st.handled:
                self._handled[aid] = max(self._handled.get(aid, -math.inf), st.set_s)

    def _seed(self, store: Store, now: float) -> None:
        """Upsert alarm 0 from the config (keeping the user's enabled/skip state); or remove it.

        The config's time is where alarm 0 starts, not a lock: once a command (Home Assistant,
        the TUI) has changed alarm 0, the change stands across restarts until the config's
        `[alarm]` values themselves change (the last seeded values are kept in the store).
        """
        want = config_alarm(self._cfg, created_s=now)
        have = store.alarm(CONFIG_ALARM_ID)
        if want is None:
            if have is not None:
                store.delete_alarm(CONFIG_ALARM_ID)
            store.set_setting(_SEED_KEY, None)
            return
        seed = [want.time, want.window_min, want.sunrise_min]
        if have is not None:
            if (
                store.setting(_SEED_KEY) == seed
                or [
                    have.time,
                    have.window_min,
                    have.sunrise_min,
                ]
                == seed
            ):
                store.set_setting(_SEED_KEY, seed)
                return
            want = Alarm(
                id=CONFIG_ALARM_ID,
                time=want.time,
                days=have.days,
                enabled=have.enabled,
                skip_s=None if have.time != want.time else have.skip_s,
                window_min=want.window_min,
                sunrise_min=want.sunrise_min,
                sound=have.sound,
                created_s=have.created_s if have.time == want.time else now,
            )
        store.put_alarm(want)
        store.set_setting(_SEED_KEY, seed)

    def _plan(self, now: float) -> Ring | None:
        return next_ring(self._schedule, self._tz, now - self._ring_max_s, self._handled)

    def _arm(self, now: float) -> SmartAlarm | None:
        ring = self._plan(now)
        if ring is None:
            if self._ring is not None:
                log.info("no alarm pending")
                self._announce(None)
            self._alarm, self._ring = None, None
            return None
        alarm = SmartAlarm(ring.set_s, ring.window_s, self._ring_max_s, policy=self._policy)
        st = self._states.get(ring.alarms[0].id)
        if st is not None and st.set_s == ring.set_s and not st.handled:
            alarm.restore(st.status, st.rang_at_s, st.snooze_until_s)
            if alarm.state == "ringing":
                log.warning("alarm was ringing when the daemon stopped: ringing again")
        self._alarm, self._ring = alarm, ring
        self._next_play_s = now if alarm.state == "ringing" else math.inf
        self._play_failed = False
        if alarm.state == "ringing":
            self._on_ring(alarm, now)
        log.info(
            "alarm armed at %s (ids %s, window %.0f min)",
            datetime.fromtimestamp(ring.set_s, tz=self._tz).isoformat(),
            ",".join(str(i) for i in ring.ids),
            ring.window_s / 60.0,
        )
        self._announce(ring.set_s)
        return alarm

    def _announce(self, set_s: float | None) -> None:
        if self._on_armed is not None:
            try:
                self._on_armed(set_s)
            except Exception:
                log.exception("alarm armed handler failed")

    def _rearm_if_moved(self, alarm: SmartAlarm, now: float) -> SmartAlarm | None:
        ring = self._plan(now)
        cur = self._ring
        if (
            ring is not None
            and cur is not None
            and (ring.set_s, ring.ids, ring.window_s)
            == (
                cur.set_s,
                cur.ids,
                cur.window_s,
            )
        ):
            return alarm
        log.info("alarm schedule changed: re-arming")
        return self._arm(now)

    # -- internals: ringing --------------------------------------------------------------------

    def _tick(self, alarm: SmartAlarm, now: float) -> None:
        ev = alarm.update_time(now)
        if ev == "window_open":
            log.info("smart window open")
            self._emit(now, "smart_window_open", {"set_s": alarm.set_s, "ids": self._ids()})
        elif ev == "ring":
            self._on_ring(alarm, now)
        elif ev == "missed":
            if alarm.rang_at_s is not None:
                log.warning("alarm rang %.0f s without being stopped", now - alarm.rang_at_s)
                self._silence()
            self._emit(
                now, "alarm_missed", {"rang_at_s": alarm.first_rang_at_s, "set_s": alarm.set_s}
            )
            self._handle(alarm, "missed", now)
        if alarm.state == "ringing" and now >= self._next_play_s:
            self._play(alarm, now)

    def _ids(self) -> list[int]:
        return list(self._ring.ids) if self._ring is not None else []

    def _on_ring(self, alarm: SmartAlarm, now: float) -> None:
        self._last_ring_s = now
        log.info("alarm ringing reason=%s early_s=%.0f", alarm.reason, alarm.set_s - now)
        self._emit(
            now,
            "alarm_ringing",
            {"reason": alarm.reason, "set_s": alarm.set_s, "ids": self._ids()},
        )
        self._save("ringing", alarm, now)
        self._play_failed = False
        if isinstance(self._speaker, SoundChoice):
            # Alarms sharing the set time ring the first sound one of them chose ("": the config's).
            try:
                self._speaker.set_sound(self._ring.sound if self._ring is not None else "")
            except Exception as e:  # the wrong sound still rings
                log.warning("alarm sound not chosen: %s", e)
        self._play(alarm, now)

    def _volume(self, alarm: SmartAlarm, now: float) -> float:
        ramp_s = self._cfg.volume_ramp_s
        start = alarm.rang_at_s if alarm.rang_at_s is not None else now
        if ramp_s <= 0:
            return 1.0
        floor = self._cfg.volume_start
        return min(1.0, floor + (1.0 - floor) * max(0.0, now - start) / ramp_s)

    def _play(self, alarm: SmartAlarm, now: float) -> None:
        if isinstance(self._speaker, VolumeControl):
            try:
                self._speaker.set_volume(self._volume(alarm, now))
            except Exception as e:  # a volume that cannot be set still rings
                log.warning("speaker volume failed: %s", e)
        try:
            self._speaker.play(now)
        except Exception as e:
            self._next_play_s = now + self._tick_s
            if not self._play_failed:
                log.error("speaker failed, retrying every %.0f s: %s", self._tick_s, e)
                self._emit(now, "alarm_speaker_failed", {"error": str(e)})
            else:
                log.warning("speaker failed again: %s", e)
            self._play_failed = True
        else:
            self._next_play_s = now + self._repeat_s

    def _silence(self) -> None:
        self._next_play_s = math.inf
        try:
            self._speaker.stop()
        except Exception:
            log.exception("speaker stop failed")

    def _handle(self, alarm: SmartAlarm, status: str, now: float) -> None:
        """The occurrence is over: never ring it again (in memory, and in the store)."""
        ids = self._ids()
        for aid in ids:
            self._handled[aid] = max(self._handled.get(aid, -math.inf), alarm.set_s)
        self._save(status, alarm, now)
        # A one-off alarm is spent: turn it off so that lists show it as such.
        if self._store is not None and self._ring is not None:
            for a in self._ring.alarms:
                if a.once:
                    try:
                        self._store.put_alarm(
                            Alarm(
                                id=a.id,
                                time=a.time,
                                days=a.days,
                                enabled=False,
                                skip_s=None,
                                window_min=a.window_min,
                                sunrise_min=a.sunrise_min,
                                sound=a.sound,
                                created_s=a.created_s,
                            )
                        )
                    except (StoreError, ValueError) as e:
                        log.error("could not turn off the spent one-off alarm %d: %s", a.id, e)

    def _save(self, status: str, alarm: SmartAlarm, now: float) -> None:
        if self._store is None or not self._ids():
            return
        try:
            self._store.set_alarm_state(
                self._ids(),
                alarm.set_s,
                status,
                t_s=now,
                rang_at_s=alarm.rang_at_s,
                snooze_until_s=alarm.snooze_until_s,
            )
        except (StoreError, ValueError) as e:
            # The alarm must never depend on the store: memory keeps what matters tonight.
            log.error("could not store the alarm state %s: %s", status, e)

    def _delay(self, alarm: SmartAlarm, now: float) -> float:
        """Seconds to sleep: at most a tick, and no later than the next boundary."""
        if alarm.state == "ringing" and alarm.rang_at_s is not None:
            bounds: tuple[float, ...] = (self._next_play_s, alarm.rang_at_s + alarm.ring_max_s)
        elif alarm.state == "snoozed" and alarm.snooze_until_s is not None:
            bounds = (alarm.snooze_until_s,)
        else:
            bounds = (alarm.window_start_s, alarm.set_s)
        delay = self._tick_s
        for b in bounds:
            if now < b < now + delay:
                delay = b - now
        return delay

    def _emit(self, now: float, kind: str, detail: dict[str, object]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(SessionEvent(now, kind, json.dumps(detail)))
        except Exception:
            log.exception("alarm event handler failed kind=%s", kind)
