"""The smart alarm: when the next alarm is, when to ring it, and the task that rings the speaker.

Three layers, from pure to wired:

- `next_occurrence` turns a local wall-clock time "HH:MM" into the next UTC instant, across DST.
- `SmartAlarm` is the state machine of one armed alarm. It is pure: time comes in as arguments
  (UTC epoch seconds) and it never reads a clock. It rings early, inside a smart window before the
  set time, at the first live-stager epoch in light sleep or wake; and it always rings at the set
  time (the deadline) if it has not rung by then, whether or not any epoch ever arrived.
- `AlarmTask` is the asyncio task of the daemon: it arms the next occurrence, ticks the state
  machine at least once a second from the injected `Clock`, and drives the `Speaker`. The fail-safe
  path (the deadline) needs nothing but the clock and the speaker.

Rule of the product: a user forgives a wrong hypnogram, never an alarm that did not ring. So every
error on the way to the speaker is caught, logged and retried a second later.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from appliance.frames import EPOCH_S, SessionEvent, Stage, StagedEpoch

if TYPE_CHECKING:
    from appliance.clock import Clock
    from appliance.config import AlarmConfig
    from hardware.speaker import Speaker

__all__ = [
    "DEFAULT_MAX_EPOCH_AGE_S",
    "DEFAULT_RING_MAX_S",
    "WAKEABLE_STAGES",
    "AlarmState",
    "AlarmTask",
    "RingReason",
    "SmartAlarm",
    "next_occurrence",
    "parse_hhmm",
]

log = logging.getLogger(__name__)

AlarmState = Literal["armed", "window", "ringing", "stopped", "missed"]
RingReason = Literal["smart", "deadline"]

DEFAULT_RING_MAX_S = 30 * 60.0
"""How long an alarm rings without being stopped before it gives up, seconds."""
DEFAULT_MAX_EPOCH_AGE_S = 3 * EPOCH_S
"""An epoch that ended longer ago than this does not ring (a lagging pipeline), seconds."""
WAKEABLE_STAGES: frozenset[int] = frozenset({int(Stage.WAKE), int(Stage.LIGHT)})
"""Hypnogram codes the smart window may ring on: already awake, or light sleep."""

_TERMINAL: frozenset[str] = frozenset({"stopped", "missed"})


# --------------------------------------------------------------------------------------------
# When: the next local wall-clock occurrence


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
# Whether: the state machine of one armed alarm


class SmartAlarm:
    """The state machine of one armed alarm: smart window, light-sleep ring, fail-safe deadline.

    States: "armed" (before the window) → "window" (smart window open) → "ringing" → "stopped"
    (dismissed) or "missed" (rang `ring_max_s` without being stopped). `update_time` must be called
    at least once a second; `update_epoch` with each live-stager epoch as it completes.

    When it rings:

    - Smart: in the window (window_start_s ≤ now_s < set_s), at the first epoch whose stage is
      LIGHT or WAKE and that ends inside the window (window_start_s ≤ t_s + 30 s ≤ set_s) no more
      than `max_epoch_age_s` before now. DEEP, REM, UNSCORED and ABSENT epochs never ring (ABSENT:
      nobody is in bed, so there is nobody to wake gently; the deadline still rings).
    - Deadline: at the first `update_time` with now_s ≥ set_s if it has not rung, epochs or not.
      Ticks at ≤ 1 s spacing make it ring within one tick of set_s, never earlier than the window.
    - Too late to help: if the first `update_time` at or after set_s is more than `ring_max_s`
      late (the clock was stepped forward, e.g. by NTP on a Pi without a real-time clock), it goes
      straight to "missed" without ringing: ringing hours after the set time would only surprise.

    It rings at most once; `stop` only dismisses a ringing alarm (a stray press in the night must
    not cancel the morning alarm).

    Args:
        set_s: The set time (deadline), UTC epoch seconds.
        window_s: Length of the smart window before `set_s`, seconds, ≥ 0 (0 = no smart ring).
        ring_max_s: How long it rings unstopped before "missed", seconds, > 0.
        max_epoch_age_s: Oldest epoch end (before now) that may still ring, seconds, ≥ 0.

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
        self._set_s = float(set_s)
        self._window_s = float(window_s)
        self._ring_max_s = float(ring_max_s)
        self._max_epoch_age_s = float(max_epoch_age_s)
        self._state: AlarmState = "armed"
        self._rang_at_s: float | None = None
        self._reason: RingReason | None = None
        self._ended_at_s: float | None = None

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
        """One of "armed", "window", "ringing", "stopped" or "missed"."""
        return self._state

    @property
    def done(self) -> bool:
        """True once the alarm is over ("stopped" or "missed")."""
        return self._state in _TERMINAL

    @property
    def rang_at_s(self) -> float | None:
        """When it started ringing, UTC epoch seconds; None if it has not rung."""
        return self._rang_at_s

    @property
    def reason(self) -> RingReason | None:
        """Why it rang: "smart" (light sleep or awake in the window) or "deadline"; None before."""
        return self._reason

    @property
    def ended_at_s(self) -> float | None:
        """When it was stopped or missed, UTC epoch seconds; None while not over."""
        return self._ended_at_s

    def update_time(self, now_s: float) -> str | None:
        """Advance the alarm to `now_s`: open the window, ring at the deadline, give up.

        Args:
            now_s: Current time, UTC epoch seconds (call at least once a second).

        Returns:
            "window_open" (once, when the window opens without ringing at the same tick), "ring"
            (the deadline rang), "missed" (it rang `ring_max_s` unstopped, or the deadline was
            first seen more than `ring_max_s` late), else None.
        """
        if self._state in ("armed", "window"):
            if now_s >= self._set_s:
                if now_s - self._set_s > self._ring_max_s:
                    log.warning(
                        "alarm deadline first seen %.0f s late (clock stepped?): not ringing "
                        "set_s=%.0f now_s=%.0f",
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
        """Offer a completed live-stager epoch; ring if it is a wakeable one inside the window.

        Args:
            epoch: The epoch (`t_s` is its start, UTC epoch s; it ends 30 s later).
            now_s: Current time, UTC epoch seconds.

        Returns:
            "ring" if this epoch rang the alarm (reason "smart"), else None.
        """
        if self._state not in ("armed", "window"):
            return None
        start_s = self.window_start_s
        if not (start_s <= now_s < self._set_s):
            return None
        if epoch.stage not in WAKEABLE_STAGES:
            return None
        end_s = epoch.t_s + EPOCH_S
        if not (start_s <= end_s <= self._set_s):
            return None
        if now_s - end_s > self._max_epoch_age_s:
            return None
        return self._ring(now_s, "smart")

    def stop(self, now_s: float) -> str | None:
        """Dismiss a ringing alarm.

        Args:
            now_s: Current time, UTC epoch seconds.

        Returns:
            "stopped" if it was ringing, else None (nothing changes).
        """
        if self._state != "ringing":
            return None
        self._end("stopped", now_s)
        return "stopped"

    def _ring(self, now_s: float, reason: RingReason) -> str:
        self._state = "ringing"
        self._rang_at_s = now_s
        self._reason = reason
        return "ring"

    def _end(self, state: AlarmState, now_s: float) -> None:
        self._state = state
        self._ended_at_s = now_s


# --------------------------------------------------------------------------------------------
# Doing it: the daemon's task


class AlarmTask:
    """The daemon's alarm: arms the next occurrence of `cfg.time` and rings the speaker.

    `run` loops forever: it computes the next occurrence, builds a `SmartAlarm`, and sleeps on the
    clock in steps of at most `tick_s` (1 s), waking exactly at the window start, the set time and
    every due (re)play. While ringing it calls `speaker.play(now_s)` at once and every `repeat_s`
    until `stop` is called or `cfg.ring_max_min` have passed, then arms the next day. A
    `speaker.play` that raises is logged, reported once per ring as "alarm_speaker_failed", and
    retried a tick later. Nothing but the clock and the speaker is needed for the deadline to ring.

    `feed` and `stop` are synchronous and must be called from the event loop's thread.

    Events (`SessionEvent.kind`, detail is a small JSON string): "smart_window_open",
    "alarm_ringing" (reason, set_s), "alarm_speaker_failed" (error), "alarm_stopped",
    "alarm_missed" (rang_at_s, or null if it was skipped as too late).

    Args:
        clock: The injected clock (UTC epoch seconds).
        speaker: The speaker to ring.
        cfg: The alarm configuration; `time == ""` means no alarm (`run` returns at once).
        tz: Time zone of `cfg.time`.
        on_event: Called with each event; its exceptions are logged and swallowed.
        tick_s: Longest sleep between checks, seconds, (0, 1].
        repeat_s: Interval between plays while ringing, seconds, > 0.
    """

    def __init__(
        self,
        clock: Clock,
        speaker: Speaker,
        cfg: AlarmConfig,
        tz: ZoneInfo,
        on_event: Callable[[SessionEvent], None] | None = None,
        *,
        tick_s: float = 1.0,
        repeat_s: float = 4.0,
    ) -> None:
        if not 0 < tick_s <= 1.0:
            raise ValueError(f"tick_s must be in (0, 1], got {tick_s!r}")
        if not repeat_s > 0:
            raise ValueError(f"repeat_s must be > 0, got {repeat_s!r}")
        self._clock = clock
        self._speaker = speaker
        self._cfg = cfg
        self._tz = tz
        self._on_event = on_event
        self._tick_s = float(tick_s)
        self._repeat_s = float(repeat_s)
        self._alarm: SmartAlarm | None = None
        self._last_ring_s: float | None = None
        self._next_play_s = math.inf
        self._play_failed = False

    @property
    def alarm(self) -> SmartAlarm | None:
        """The current alarm's state machine, or None (no alarm configured, or not running)."""
        return self._alarm

    @property
    def next_ring_s(self) -> float | None:
        """Set time of the armed alarm that has not rung yet, UTC epoch s; None otherwise."""
        a = self._alarm
        if a is None or a.state not in ("armed", "window"):
            return None
        return a.set_s

    @property
    def last_ring_s(self) -> float | None:
        """When the alarm last started ringing, UTC epoch seconds; None if never."""
        return self._last_ring_s

    async def run(self) -> None:
        """Arm, watch and ring, one day after the other, until cancelled."""
        if not self._cfg.time:
            log.info("no alarm time configured")
            return
        if not self._speaker.available():
            log.warning("speaker not available; the alarm will keep trying to ring it")
        try:
            after_s = self._clock.now()
            # Restarted by the supervisor mid-window or while ringing: carry on with today's
            # alarm instead of arming tomorrow's.
            resume = self._alarm if self._alarm is not None and not self._alarm.done else None
            if resume is not None and resume.state == "ringing":
                self._next_play_s = self._clock.now()  # the crash silenced it: sound again
            while True:
                alarm = resume or self._arm(after_s)
                resume = None
                last_now = self._clock.now()
                while not alarm.done:
                    now = self._clock.now()
                    if now < last_now - self._tick_s:
                        alarm = self._maybe_rearm_backwards(alarm, now)
                    last_now = now
                    self._tick(alarm, now)
                    await self._clock.sleep(self._delay(alarm, now))
                # Strictly after the set time too: a smart ring stopped before set_s must not
                # re-arm the same morning.
                after_s = max(self._clock.now(), alarm.set_s)
        finally:
            if self._alarm is not None and self._alarm.state == "ringing":
                self._silence()

    def feed(self, epoch: StagedEpoch) -> None:
        """Hand a completed live-stager epoch to the armed alarm (may ring it). Never raises."""
        try:
            alarm = self._alarm
            if alarm is None:
                return
            now = self._clock.now()
            if alarm.update_epoch(epoch, now) == "ring":
                self._on_ring(alarm, now)
        except Exception:
            log.exception("alarm feed failed; the deadline still rings")

    def stop(self) -> bool:
        """Dismiss the ringing alarm and silence the speaker.

        Returns:
            True if an alarm was ringing; False (and nothing changes) otherwise.
        """
        alarm = self._alarm
        now = self._clock.now()
        if alarm is None or alarm.stop(now) != "stopped":
            log.info("alarm dismiss ignored: not ringing")
            return False
        self._silence()
        log.info("alarm stopped after %.0f s", now - (alarm.rang_at_s or now))
        self._emit(now, "alarm_stopped", {"rang_at_s": alarm.rang_at_s})
        return True

    # -- internals --------------------------------------------------------------------------

    def _arm(self, after_s: float) -> SmartAlarm:
        set_s = next_occurrence(self._cfg.time, self._tz, after_s)
        alarm = SmartAlarm(set_s, self._cfg.window_min * 60.0, self._cfg.ring_max_min * 60.0)
        self._alarm = alarm
        self._next_play_s = math.inf
        self._play_failed = False
        log.info(
            "alarm armed at %s (window %.0f min)",
            datetime.fromtimestamp(set_s, tz=self._tz).isoformat(),
            self._cfg.window_min,
        )
        return alarm

    def _maybe_rearm_backwards(self, alarm: SmartAlarm, now: float) -> SmartAlarm:
        """Re-arm if the clock stepped back and an earlier occurrence now comes first."""
        if alarm.state not in ("armed", "window"):
            return alarm
        earlier = next_occurrence(self._cfg.time, self._tz, now)
        if earlier >= alarm.set_s:
            return alarm
        log.warning("clock stepped back to %.0f; re-arming the earlier occurrence", now)
        return self._arm(now)

    def _tick(self, alarm: SmartAlarm, now: float) -> None:
        ev = alarm.update_time(now)
        if ev == "window_open":
            log.info("smart window open")
            self._emit(now, "smart_window_open", {"set_s": alarm.set_s})
        elif ev == "ring":
            self._on_ring(alarm, now)
        elif ev == "missed":
            if alarm.rang_at_s is not None:
                log.warning("alarm rang %.0f s without being stopped", now - alarm.rang_at_s)
                self._silence()
            self._emit(now, "alarm_missed", {"rang_at_s": alarm.rang_at_s, "set_s": alarm.set_s})
        if alarm.state == "ringing" and now >= self._next_play_s:
            self._play(now)

    def _on_ring(self, alarm: SmartAlarm, now: float) -> None:
        self._last_ring_s = now
        log.info("alarm ringing reason=%s early_s=%.0f", alarm.reason, alarm.set_s - now)
        self._emit(now, "alarm_ringing", {"reason": alarm.reason, "set_s": alarm.set_s})
        self._play(now)

    def _play(self, now: float) -> None:
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

    def _delay(self, alarm: SmartAlarm, now: float) -> float:
        """Seconds to sleep: at most a tick, and no later than the next boundary."""
        if alarm.state == "ringing" and alarm.rang_at_s is not None:
            bounds = (self._next_play_s, alarm.rang_at_s + alarm.ring_max_s)
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
