"""`appliance alarm backstop`: ring a due alarm when the daemon is down (run by a systemd timer).

The daemon's `AlarmTask` is the alarm. This is the backstop for when the daemon itself is dead: a
systemd timer runs it every minute (`OnCalendar=*:*:00`, in the systemd issue's units), and it:

1. reads the schedule and ring state from the store;
2. stays quiet if the daemon's alarm task beat within the last `ALIVE_S` (it rings itself);
3. finds the occurrence due in the last `DUE_S` (2 min) that no one has handled (rung and
   dismissed, missed, or rung by a previous backstop run);
4. records it as rung by the backstop (status "backstop") once the first play succeeded, so the
   next minute's run (or the daemon when it comes back) does not ring it again, and rings the
   speaker for `ring_s` (play every `repeat_s`), then stops.

It is idempotent: running it twice in the same minute rings once. If the store cannot be opened
it falls back to the config's `[alarm] time` with no state, ringing only when the set time lies in
the last 60 s, so a timer firing once a minute rings it once. It exits 0 whenever it did its job
(nothing due is a success), 2 on a bad config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from appliance.alarm import SoundChoice, config_alarm
from appliance.alarm_schedule import Alarm, handled_map, next_ring
from appliance.config import AlarmConfig, Config
from appliance.errors import StoreError
from appliance.store import Store
from hardware.board import detect_board
from hardware.speaker import Speaker, speaker_from_config

__all__ = ["ALIVE_S", "DUE_S", "BackstopResult", "backstop", "default_speaker"]

log = logging.getLogger(__name__)

DUE_S = 120.0
"""An occurrence this recent (seconds before now) and unhandled is due."""
ALIVE_S = 90.0
"""The daemon's alarm task is alive if it beat this recently, seconds (it beats every 30 s)."""
_NO_STORE_DUE_S = 60.0


@dataclass(frozen=True, slots=True)
class BackstopResult:
    """What a backstop run did.

    Attributes:
        action: "rang", "daemon_alive", "nothing_due" or "speaker_failed".
        set_s: The occurrence it rang (or tried to), UTC epoch s, else None.
        ids: The alarms of that occurrence.
        plays: Successful plays.
    """

    action: str
    set_s: float | None = None
    ids: tuple[int, ...] = ()
    plays: int = 0


def default_speaker(cfg: Config) -> Speaker:
    """The configured `[speaker]` chain on a Pi, the simulated twin elsewhere.

    On a Pi that is the chain `appliance run` rings: its device, fallback device, buzzer and
    sound.
    """
    if detect_board(cfg).is_pi:
        return speaker_from_config(cfg.speaker, simulated=False)
    log.warning("backstop: not on a Pi; ringing the simulated speaker")
    return speaker_from_config(cfg.speaker, simulated=True)


def backstop(
    store: Store | None,
    cfg: AlarmConfig,
    tz: ZoneInfo,
    speaker: Speaker,
    *,
    now: Callable[[], float],
    sleep: Callable[[float], None],
    ring_s: float = 60.0,
    repeat_s: float = 4.0,
) -> BackstopResult:
    """Ring the due, unhandled alarm if the daemon is down (see the module docstring).

    Args:
        store: The open store, or None if it could not be opened.
        cfg: The alarm config (alarm 0 when the store is unusable).
        tz: Local time zone.
        speaker: The output to ring.
        now: The clock, UTC epoch s.
        sleep: Blocking sleep, seconds (injected so tests do not wait).
        ring_s: How long to ring, seconds (the timer's next run comes a minute later).
        repeat_s: Interval between plays, seconds.
    """
    t = now()
    alarms: list[Alarm]
    handled: dict[int, float] = {}
    due_s = DUE_S
    if store is not None:
        try:
            beat = store.heartbeat()
            if beat is not None and 0.0 <= t - beat <= ALIVE_S:
                return BackstopResult("daemon_alive")
            alarms = store.alarms()
            handled = handled_map(store)
            if not alarms and (a0 := config_alarm(cfg)) is not None:
                alarms = [a0]  # the daemon never ran to seed it
        except StoreError as e:
            log.error("backstop: store unusable, using the config's alarm: %s", e)
            store = None
    if store is None:
        a0 = config_alarm(cfg)
        alarms = [] if a0 is None else [a0]
        due_s = _NO_STORE_DUE_S
    ring = next_ring(alarms, tz, t - due_s, handled)
    if ring is None or ring.set_s > t:
        return BackstopResult("nothing_due")
    log.warning("backstop: the daemon is down and alarm %s is due: ringing", ring.ids)
    if isinstance(speaker, SoundChoice):
        try:
            speaker.set_sound(ring.sound)
        except ValueError as e:  # the configured sound still rings
            log.error("backstop: %s", e)
    plays = 0
    end = t + ring_s
    while True:
        try:
            speaker.play(now())
            plays += 1
            if plays == 1 and store is not None:
                try:
                    store.set_alarm_state(
                        ring.ids, ring.set_s, "backstop", t_s=now(), rang_at_s=now()
                    )
                except StoreError as e:
                    log.error("backstop: could not record the ring: %s", e)
        except Exception as e:
            log.error("backstop: speaker failed: %s", e)
        if now() + repeat_s > end:
            break
        sleep(repeat_s)
    try:
        speaker.stop()
    except Exception as e:
        log.error("backstop: speaker stop failed: %s", e)
    return BackstopResult("rang" if plays else "speaker_failed", ring.set_s, ring.ids, plays)
