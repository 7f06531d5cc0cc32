"""Tests of the smart alarm: DST-correct occurrences, the state machine, and the asyncio task."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.alarm import AlarmTask, SmartAlarm, next_occurrence, parse_hhmm
from appliance.clock import VirtualClock
from appliance.config import AlarmConfig
from appliance.frames import (
    ABSENT,
    EPOCH_S,
    UNSCORED,
    EpochFeatures,
    SessionEvent,
    Stage,
    StagedEpoch,
)
from appliance.wake_policy import FirstWakeablePolicy, WakePolicy
from hardware.speaker import SimulatedSpeaker

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> float:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()


def local(tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz, fold=fold).timestamp()


def wall(t_s: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(t_s, tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def epoch(end_s: float, stage: int, index: int = 0) -> StagedEpoch:
    """A staged epoch that ends at `end_s`."""
    feats = EpochFeatures(
        t_s=end_s - EPOCH_S,
        index=index,
        present_fraction=0.0 if stage == ABSENT else 1.0,
        values=(),
        breath_rate_bpm=None,
        heart_rate_bpm=None,
        distance_m=None,
        movement=0.0,
        presence_confidence=0.0 if stage == ABSENT else 0.9,
    )
    probs = [0.0, 0.0, 0.0, 0.0]
    if stage >= 0:
        probs[stage] = 1.0
    return StagedEpoch(
        t_s=end_s - EPOCH_S,
        index=index,
        stage=stage,
        probs=(probs[0], probs[1], probs[2], probs[3]),
        confidence=1.0 if stage >= 0 else 0.0,
        features=feats,
    )


# --------------------------------------------------------------------------------------------
# next_occurrence


class TestNextOccurrenceNormalDay:
    def test_same_day(self) -> None:
        after = local(BERLIN, 2024, 6, 10, 6, 0)
        assert next_occurrence("07:00", BERLIN, after) == utc(2024, 6, 10, 5, 0)  # CEST = UTC+2

    def test_strictly_after(self) -> None:
        at = local(BERLIN, 2024, 6, 10, 7, 0)
        assert next_occurrence("07:00", BERLIN, at - 0.001) == at
        assert next_occurrence("07:00", BERLIN, at) == local(BERLIN, 2024, 6, 11, 7, 0)
        assert next_occurrence("07:00", BERLIN, at + 1) == local(BERLIN, 2024, 6, 11, 7, 0)

    def test_evening_gives_next_morning(self) -> None:
        after = local(NEW_YORK, 2024, 6, 10, 23, 15)
        assert next_occurrence("06:45", NEW_YORK, after) == utc(2024, 6, 11, 10, 45)  # EDT

    def test_midnight(self) -> None:
        after = local(BERLIN, 2024, 1, 15, 23, 59)
        assert next_occurrence("00:00", BERLIN, after) == utc(2024, 1, 15, 23, 0)  # CET

    def test_bad_input(self) -> None:
        for bad in ("7", "24:00", "07:60", "ab:cd", "07:00:00", "-1:30", ""):
            with pytest.raises(ValueError):
                next_occurrence(bad, BERLIN, 0.0)
        with pytest.raises(ValueError):
            next_occurrence("07:00", BERLIN, math.nan)
        assert parse_hhmm("7:05") == (7, 5)


class TestNextOccurrenceBerlin:
    """2024: 31 March 02:00 CET → 03:00 CEST (01:00 UTC); 27 Oct 03:00 CEST → 02:00 CET."""

    def test_spring_forward_night_keeps_local_time(self) -> None:
        after = local(BERLIN, 2024, 3, 30, 23, 0)
        t = next_occurrence("07:00", BERLIN, after)
        assert t == utc(2024, 3, 31, 5, 0)  # 07:00 CEST
        assert t - after == 7 * 3600  # one hour shorter than the wall clock says
        assert wall(t, BERLIN) == "2024-03-31 07:00:00 CEST"

    @pytest.mark.parametrize("hhmm", ["02:00", "02:01", "02:30", "02:59"])
    def test_gap_rings_at_end_of_gap(self, hhmm: str) -> None:
        t = next_occurrence(hhmm, BERLIN, local(BERLIN, 2024, 3, 30, 12, 0))
        assert t == utc(2024, 3, 31, 1, 0)
        assert wall(t, BERLIN) == "2024-03-31 03:00:00 CEST"

    def test_around_gap(self) -> None:
        after = local(BERLIN, 2024, 3, 30, 12, 0)
        assert next_occurrence("01:59", BERLIN, after) == utc(2024, 3, 31, 0, 59)
        assert next_occurrence("03:00", BERLIN, after) == utc(2024, 3, 31, 1, 0)
        assert next_occurrence("03:01", BERLIN, after) == utc(2024, 3, 31, 1, 1)
        # The day after the gap is an ordinary day again.
        gap_ring = next_occurrence("02:30", BERLIN, after)
        assert next_occurrence("02:30", BERLIN, gap_ring) == utc(2024, 4, 1, 0, 30)

    def test_repeated_time_rings_once_at_first(self) -> None:
        t = next_occurrence("02:30", BERLIN, local(BERLIN, 2024, 10, 26, 12, 0))
        assert t == utc(2024, 10, 27, 0, 30)  # 02:30 CEST, fold=0
        assert wall(t, BERLIN) == "2024-10-27 02:30:00 CEST"
        second = utc(2024, 10, 27, 1, 30)  # 02:30 CET, the repeat
        assert wall(second, BERLIN) == "2024-10-27 02:30:00 CET"
        tomorrow = utc(2024, 10, 28, 1, 30)  # 02:30 CET
        assert next_occurrence("02:30", BERLIN, t) == tomorrow
        assert next_occurrence("02:30", BERLIN, t + 1800) == tomorrow
        assert next_occurrence("02:30", BERLIN, second - 1) == tomorrow

    def test_fall_back_night_keeps_local_time(self) -> None:
        after = local(BERLIN, 2024, 10, 26, 23, 0)
        t = next_occurrence("07:00", BERLIN, after)
        assert t == utc(2024, 10, 27, 6, 0)  # 07:00 CET
        assert t - after == 9 * 3600


class TestNextOccurrenceNewYork:
    """2024: 10 March 02:00 EST → 03:00 EDT (07:00 UTC); 3 Nov 02:00 EDT → 01:00 EST (06:00 UTC)."""

    @pytest.mark.parametrize("hhmm", ["02:00", "02:30", "02:59", "03:00"])
    def test_gap(self, hhmm: str) -> None:
        t = next_occurrence(hhmm, NEW_YORK, local(NEW_YORK, 2024, 3, 9, 12, 0))
        assert t == utc(2024, 3, 10, 7, 0)
        assert wall(t, NEW_YORK) == "2024-03-10 03:00:00 EDT"

    def test_spring_forward_night(self) -> None:
        t = next_occurrence("07:00", NEW_YORK, local(NEW_YORK, 2024, 3, 9, 22, 0))
        assert t == utc(2024, 3, 10, 11, 0)  # 07:00 EDT

    def test_repeated_time(self) -> None:
        t = next_occurrence("01:30", NEW_YORK, local(NEW_YORK, 2024, 11, 2, 12, 0))
        assert t == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
        assert next_occurrence("01:30", NEW_YORK, t) == utc(2024, 11, 4, 6, 30)  # EST
        # Between the two 01:30s of the night: the repeat does not ring.
        assert next_occurrence("01:30", NEW_YORK, utc(2024, 11, 3, 6, 0)) == utc(2024, 11, 4, 6, 30)

    def test_fall_back_night(self) -> None:
        t = next_occurrence("07:00", NEW_YORK, local(NEW_YORK, 2024, 11, 2, 22, 0))
        assert t == utc(2024, 11, 3, 12, 0)  # 07:00 EST


def _brute_next(hour: int, minute: int, tz: ZoneInfo, after_s: float) -> float:
    """Walk UTC minutes: ring where the wall clock first reaches hh:mm on some date (fold=0)."""
    t = (math.floor(after_s / 60) + 1) * 60
    for _ in range(4 * 24 * 60):
        now = datetime.fromtimestamp(t, tz)
        w = now.replace(tzinfo=None)
        wp = datetime.fromtimestamp(t - 60, tz).replace(tzinfo=None)
        target = w.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target > w:
            target -= timedelta(days=1)
        if now.fold == 0 and wp < target <= w:
            return float(t)
        t += 60
    raise AssertionError("no occurrence found")


_TRANSITIONS = [
    (BERLIN, utc(2024, 3, 31, 1)),
    (BERLIN, utc(2024, 10, 27, 1)),
    (NEW_YORK, utc(2024, 3, 10, 7)),
    (NEW_YORK, utc(2024, 11, 3, 6)),
    (ZoneInfo("Australia/Lord_Howe"), utc(2024, 10, 5, 15, 30)),  # 30-minute DST
    (ZoneInfo("Pacific/Apia"), utc(2011, 12, 30, 10)),  # skipped a whole day
    (ZoneInfo("UTC"), utc(2024, 6, 1)),
]


@settings(max_examples=80, deadline=None)
@given(
    zone=st.sampled_from(_TRANSITIONS),
    offset_s=st.one_of(
        st.integers(-2 * 86400, 2 * 86400).map(float),
        st.floats(-2 * 86400, 2 * 86400, allow_nan=False),
    ),
    hhmm=st.one_of(
        st.sampled_from(["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "23:59"]),
        st.tuples(st.integers(0, 23), st.integers(0, 59)).map(
            lambda hm: f"{hm[0]:02d}:{hm[1]:02d}"
        ),
    ),
)
def test_next_occurrence_matches_minute_walk(
    zone: tuple[ZoneInfo, float], offset_s: float, hhmm: str
) -> None:
    tz, center = zone
    after = center + offset_s
    hour, minute = parse_hhmm(hhmm)
    t = next_occurrence(hhmm, tz, after)
    assert t > after
    assert t == _brute_next(hour, minute, tz, after)


# --------------------------------------------------------------------------------------------
# SmartAlarm

SET_S = utc(2024, 6, 10, 5, 0)  # 07:00 in Berlin
WINDOW_S = 30 * 60.0


def tick_through(alarm: SmartAlarm, start_s: float, end_s: float) -> list[tuple[float, str]]:
    """Call update_time every second in [start_s, end_s]; return the non-None results."""
    out = []
    t = start_s
    while t <= end_s:
        ev = alarm.update_time(t)
        if ev is not None:
            out.append((t, ev))
        t += 1.0
    return out


class TestSmartAlarm:
    def test_properties(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        assert a.set_s == SET_S
        assert a.window_start_s == SET_S - WINDOW_S
        assert a.ring_max_s == 30 * 60
        assert (a.state, a.rang_at_s, a.reason, a.done) == ("armed", None, None, False)

    def test_nothing_rings_before_the_window(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        start = a.window_start_s
        for k in range(1, 200):  # a night of light and wake epochs before the window
            end = start - 3 * 3600 + k * EPOCH_S
            assert end < start
            assert a.update_epoch(epoch(end, Stage.LIGHT if k % 2 else Stage.WAKE), end) is None
            assert a.update_time(end) is None
        assert tick_through(a, start - 600, start - 1) == []
        assert a.state == "armed"
        assert a.update_time(start) == "window_open"
        assert (a.state, a.done) == ("window", False)
        assert a.update_time(start + 0.5) is None  # window_open is reported once

    def test_smart_ring_on_light_epoch_inside_window(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        tick_through(a, SET_S - 3600, SET_S - 1201)
        for k, stage in enumerate([Stage.DEEP, Stage.REM, ABSENT, UNSCORED]):
            end = SET_S - 1500 + k * EPOCH_S
            assert a.update_epoch(epoch(end, stage), end) is None
        ring_at = SET_S - 1200.0
        assert a.update_epoch(epoch(ring_at, Stage.LIGHT), ring_at + 0.2) == "ring"
        assert (a.state, a.reason, a.rang_at_s) == ("ringing", "smart", ring_at + 0.2)
        # It rang once: neither more epochs nor the deadline ring again.
        assert a.update_epoch(epoch(ring_at + EPOCH_S, Stage.LIGHT), ring_at + EPOCH_S) is None
        assert [e for _, e in tick_through(a, ring_at + 1, SET_S + 5)] == []

    def test_wake_epoch_rings(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        end = SET_S - 60.0
        assert a.update_epoch(epoch(end, Stage.WAKE), end) == "ring"
        assert a.reason == "smart"

    def test_epoch_straddling_window_start_rings(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        end = a.window_start_s + 10.0  # started 20 s before the window
        assert a.update_epoch(epoch(end, Stage.LIGHT), end) == "ring"

    def test_epoch_that_ended_before_the_window_does_not_ring(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        end = a.window_start_s - 1.0
        assert a.update_epoch(epoch(end, Stage.LIGHT), a.window_start_s + 5.0) is None
        assert a.state == "armed"

    def test_stale_epoch_does_not_ring(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        end = SET_S - 1200.0
        assert a.update_epoch(epoch(end, Stage.LIGHT), end + 5 * 60) is None  # pipeline lagging
        assert a.update_epoch(epoch(end, Stage.LIGHT), end + 90) == "ring"

    def test_deep_and_rem_all_window_then_deadline_exactly_at_set_time(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        got: list[tuple[float, str]] = []
        t = SET_S - 3600.0
        k = 0
        while t <= SET_S + 10:
            if t % EPOCH_S == 0:
                stage = (Stage.DEEP, Stage.REM, ABSENT)[k % 3]
                k += 1
                assert a.update_epoch(epoch(t, stage), t) is None
            ev = a.update_time(t)
            if ev:
                got.append((t, ev))
            t += 1.0
        assert got == [(a.window_start_s, "window_open"), (SET_S, "ring")]
        assert (a.reason, a.rang_at_s) == ("deadline", SET_S)

    def test_deadline_needs_no_epochs(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        assert a.update_time(SET_S - 0.001) == "window_open"
        assert a.update_time(SET_S) == "ring"
        assert a.reason == "deadline"

    def test_epoch_at_deadline_leaves_it_to_the_deadline(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        assert a.update_epoch(epoch(SET_S, Stage.LIGHT), SET_S) is None
        assert a.update_time(SET_S) == "ring"
        assert a.reason == "deadline"

    def test_zero_window_rings_at_deadline_only(self) -> None:
        a = SmartAlarm(SET_S, 0.0)
        assert a.update_epoch(epoch(SET_S - 1, Stage.LIGHT), SET_S - 1) is None
        assert a.update_time(SET_S - 1) is None
        assert a.update_time(SET_S) == "ring"  # the window opens and rings on the same tick

    def test_missed_after_ring_max(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S, ring_max_s=600.0)
        assert a.update_time(SET_S) == "ring"
        got = tick_through(a, SET_S + 1, SET_S + 700)
        assert got == [(SET_S + 600, "missed")]
        assert (a.state, a.done, a.ended_at_s, a.rang_at_s) == ("missed", True, SET_S + 600, SET_S)
        assert a.stop(SET_S + 800) is None
        assert a.state == "missed"

    def test_stop_only_dismisses_a_ringing_alarm(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S)
        assert a.stop(SET_S - 100) is None  # a stray press in the night
        assert a.state in ("armed", "window")
        assert a.update_time(SET_S) == "ring"
        assert a.stop(SET_S + 42) == "dismissed"
        assert (a.state, a.done, a.ended_at_s) == ("dismissed", True, SET_S + 42)
        assert tick_through(a, SET_S + 43, SET_S + 4000) == []

    def test_late_deadline_within_ring_max_still_rings(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S, ring_max_s=600.0)
        assert a.update_time(SET_S - 3600) is None
        assert a.update_time(SET_S + 30) == "ring"  # the clock stepped 61 min forward
        assert a.rang_at_s == SET_S + 30

    def test_deadline_far_in_the_past_is_missed_without_ringing(self) -> None:
        a = SmartAlarm(SET_S, WINDOW_S, ring_max_s=600.0)
        assert a.update_time(SET_S + 601) == "missed"
        assert (a.state, a.rang_at_s) == ("missed", None)

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"set_s": math.nan, "window_s": 0.0}, "set_s"),
            ({"set_s": 0.0, "window_s": -1.0}, "window_s"),
            ({"set_s": 0.0, "window_s": 1.0, "ring_max_s": 0.0}, "ring_max_s"),
            ({"set_s": 0.0, "window_s": 1.0, "max_epoch_age_s": -1.0}, "max_epoch_age_s"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, float], name: str) -> None:
        with pytest.raises(ValueError, match=name):
            SmartAlarm(**kwargs)


_stage_codes = st.sampled_from([int(s) for s in Stage] + [ABSENT, UNSCORED])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    window_s=st.floats(0.0, 600.0),
    lead_s=st.floats(0.0, 900.0),
    steps=st.lists(st.floats(0.001, 1.0), max_size=400),
    epochs=st.lists(
        st.tuples(
            st.integers(0, 3000),  # tick index after which it arrives
            st.floats(0.0, 1.0),  # when between that tick and the next
            st.floats(-3000.0, 3000.0),  # epoch start relative to set_s
            _stage_codes,
        ),
        max_size=60,
    ),
)
def test_rings_exactly_once_inside_window(
    window_s: float,
    lead_s: float,
    steps: list[float],
    epochs: list[tuple[int, float, float, int]],
) -> None:
    set_s = 1_717_995_600.0 + 0.37
    ring_max_s = 120.0
    alarm = SmartAlarm(set_s, window_s, ring_max_s)
    start = alarm.window_start_s - lead_s
    # Tick times: hypothesis' spacings first, then 1 s, until well past ring_max.
    ticks = [start]
    for dt in steps:
        ticks.append(ticks[-1] + dt)
    while ticks[-1] < set_s + ring_max_s + 5:
        ticks.append(ticks[-1] + 1.0)
    by_tick: dict[int, list[tuple[float, float, int]]] = {}
    for i, frac, rel_start, stage in epochs:
        by_tick.setdefault(i % len(ticks), []).append((frac, rel_start, stage))

    rings: list[tuple[float, str]] = []
    for i, t in enumerate(ticks):
        if alarm.update_time(t) == "ring":
            rings.append((t, "deadline"))
        nxt = ticks[i + 1] if i + 1 < len(ticks) else t + 1.0
        for frac, rel_start, stage in by_tick.get(i, []):
            now = t + frac * (nxt - t)
            if alarm.update_epoch(epoch(set_s + rel_start + EPOCH_S, stage), now) == "ring":
                rings.append((now, "smart"))

    assert len(rings) == 1
    ring_t, how = rings[0]
    assert alarm.rang_at_s == ring_t
    assert alarm.reason == how
    assert ring_t >= alarm.window_start_s  # never before the window
    assert ring_t <= set_s + 1.0  # never later than the set time (up to the 1-s tick)
    if how == "smart":
        assert ring_t < set_s
    assert alarm.state == "missed"  # nobody stopped it


# --------------------------------------------------------------------------------------------
# AlarmTask, in virtual time


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Harness:
    """Runs an AlarmTask on a virtual clock stepped by the test."""

    def __init__(
        self,
        start_s: float,
        *,
        time: str = "07:00",
        window_min: float = 30.0,
        ring_max_min: float = 30.0,
        tz: ZoneInfo = BERLIN,
        fail_plays: int = 0,
        on_event: Callable[[SessionEvent], None] | None = None,
        policy: WakePolicy | None = None,
    ) -> None:
        self.clock = VirtualClock(start_s)
        self.speaker = SimulatedSpeaker(self.clock, fail_plays=fail_plays)
        self.events: list[SessionEvent] = []
        cfg = AlarmConfig(time=time, window_min=window_min, ring_max_min=ring_max_min)
        self.task = AlarmTask(
            self.clock, self.speaker, cfg, tz, on_event or self.events.append, policy=policy
        )
        self.runner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.runner = asyncio.create_task(self.task.run())
        await settle()

    async def step_until(
        self, end_s: float, step_s: float = 1.0, each: Callable[[float], None] | None = None
    ) -> None:
        while self.clock.now() < end_s:
            self.clock.advance(step_s)
            await settle()
            if each is not None:
                each(self.clock.now())
                await settle()

    async def close(self) -> None:
        assert self.runner is not None
        self.runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.runner

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class TestAlarmTask:
    def test_rings_at_set_time_without_any_epoch(self) -> None:
        set_s = local(BERLIN, 2024, 6, 10, 7, 0)

        async def main() -> Harness:
            h = Harness(set_s - 3600)
            await h.start()
            assert h.task.next_ring_s == set_s
            await h.step_until(set_s - 1)
            assert h.speaker.events == []
            await h.step_until(set_s + 10)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.plays[0] == set_s
        assert h.speaker.plays == [set_s, set_s + 4, set_s + 8]  # the chime repeats
        assert h.task.last_ring_s == set_s
        assert h.kinds()[:2] == ["smart_window_open", "alarm_ringing"]
        assert h.events[0].t_s == set_s - 1800
        assert h.events[1].t_s == set_s
        assert json.loads(h.events[1].detail)["reason"] == "deadline"
        assert h.speaker.events[-1][1] == "stop"  # cancelled while ringing: silenced

    def test_light_epoch_in_window_rings_early(self) -> None:
        set_s = local(BERLIN, 2024, 6, 10, 7, 0)
        light_at = set_s - 600

        async def main() -> Harness:
            h = Harness(set_s - 3600, policy=FirstWakeablePolicy())
            await h.start()

            def feed(now: float) -> None:
                if now % EPOCH_S == 0 and now < set_s - 1200:
                    h.task.feed(epoch(now, Stage.DEEP))
                elif now == light_at - 60:
                    h.task.feed(epoch(now, Stage.REM))
                elif now == light_at:
                    h.task.feed(epoch(now, Stage.LIGHT))

            await h.step_until(set_s + 5, each=feed)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.plays[0] == light_at
        assert h.task.last_ring_s == light_at
        assert h.kinds().count("alarm_ringing") == 1
        assert json.loads(h.events[h.kinds().index("alarm_ringing")].detail)["reason"] == "smart"
        assert h.task.alarm is not None and h.task.alarm.reason == "smart"

    def test_speaker_failing_first_play_rings_next_second(self) -> None:
        set_s = local(BERLIN, 2024, 6, 10, 7, 0)

        async def main() -> Harness:
            h = Harness(set_s - 5, fail_plays=1)
            await h.start()
            await h.step_until(set_s + 3)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.plays[0] == set_s + 1
        failed = [e for e in h.events if e.kind == "alarm_speaker_failed"]
        assert [e.t_s for e in failed] == [set_s]
        assert "simulated speaker failure" in failed[0].detail

    def test_speaker_failing_for_a_while_keeps_trying_every_second(self) -> None:
        set_s = local(BERLIN, 2024, 6, 10, 7, 0)

        async def main() -> Harness:
            h = Harness(set_s - 5, fail_plays=10)
            await h.start()
            await h.step_until(set_s + 15)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.plays == [set_s + 10, set_s + 14]
        assert h.kinds().count("alarm_speaker_failed") == 1

    def test_stop_dismisses_and_arms_tomorrow(self) -> None:
        set_s = local(BERLIN, 2024, 6, 10, 7, 0)

        async def main() -> Harness:
            h = Harness(set_s - 10)
            await h.start()
            await h.step_until(set_s - 5)
            assert h.task.stop() is False  # not ringing yet: ignored
            await h.step_until(set_s + 6)
            assert h.task.next_ring_s is None  # ringing
            assert h.task.stop() is True
            await h.step_until(set_s + 60)
            assert h.task.next_ring_s == local(BERLIN, 2024, 6, 11, 7, 0)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.events == [
            (set_s, "play"),
            (set_s + 4, "play"),
            (set_s + 6, "stop"),
        ]
        assert h.kinds()[-1] == "alarm_dismissed"

    def test_smart_ring_stopped_before_set_time_does_not_ring_again(self) -> None:
        set_s = local(BERLIN, 2024, 6, 10, 7, 0)

        async def main() -> Harness:
            h = Harness(set_s - 1200, policy=FirstWakeablePolicy())
            await h.start()
            await h.step_until(set_s - 900)
            h.task.feed(epoch(set_s - 900, Stage.WAKE))
            await h.step_until(set_s - 890)
            assert h.task.stop() is True
            await h.step_until(set_s + 120)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.plays == [set_s - 900, set_s - 896, set_s - 892]
        assert h.speaker.events[-1] == (set_s - 890, "stop")
        assert h.task.next_ring_s == local(BERLIN, 2024, 6, 11, 7, 0)

    def test_missed_after_ring_max(self) -> None:
        set_s = local(BERLIN, 2024, 6, 10, 7, 0)

        async def main() -> Harness:
            h = Harness(set_s - 2, ring_max_min=1.0, window_min=0.0)
            await h.start()
            await h.step_until(set_s + 100)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.plays[0] == set_s
        assert h.speaker.plays[-1] < set_s + 60
        assert (set_s + 60, "stop") in h.speaker.events
        assert h.speaker.events[-1] == (set_s + 60, "stop")
        assert h.kinds() == ["alarm_ringing", "alarm_missed"]
        assert h.task.next_ring_s == local(BERLIN, 2024, 6, 11, 7, 0)

    def test_rings_at_local_time_on_spring_forward_morning(self) -> None:
        set_s = utc(2024, 3, 31, 5, 0)  # 07:00 CEST; 06:00 UTC is what +24 h would give

        async def main() -> Harness:
            h = Harness(local(BERLIN, 2024, 3, 30, 23, 0))
            await h.start()
            assert h.task.next_ring_s == set_s
            await h.step_until(set_s - 3600, step_s=600.0)
            await h.step_until(set_s + 2)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.plays[0] == set_s
        assert wall(set_s, BERLIN) == "2024-03-31 07:00:00 CEST"

    def test_no_alarm_configured_returns(self) -> None:
        async def main() -> Harness:
            h = Harness(utc(2024, 6, 10), time="")
            await asyncio.wait_for(h.task.run(), timeout=1.0)
            return h

        h = asyncio.run(main())
        assert h.task.next_ring_s is None
        assert h.speaker.events == []

    def test_feed_never_raises_and_a_bad_event_handler_does_not_stop_the_ring(self) -> None:
        set_s = local(BERLIN, 2024, 6, 10, 7, 0)

        def bad_handler(ev: SessionEvent) -> None:
            raise RuntimeError("subscriber bug")

        async def main() -> Harness:
            h = Harness(set_s - 600, on_event=bad_handler)
            h.task.feed(epoch(set_s - 600, Stage.LIGHT))  # before run: no alarm yet
            await h.start()
            h.task.feed(None)  # type: ignore[arg-type]
            await h.step_until(set_s + 1)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.plays[0] == set_s

    def test_clock_stepped_back_rearms_the_earlier_occurrence(self) -> None:
        true_set_s = local(BERLIN, 2024, 6, 10, 7, 0)

        async def main() -> tuple[SteppableClock, SimulatedSpeaker, AlarmTask]:
            # The Pi booted with a stale clock a day ahead, then NTP corrected it.
            clock = SteppableClock(local(BERLIN, 2024, 6, 11, 8, 0))
            speaker = SimulatedSpeaker(clock)
            task = AlarmTask(clock, speaker, AlarmConfig(time="07:00"), BERLIN)
            runner = asyncio.create_task(task.run())
            await settle()
            assert task.next_ring_s == local(BERLIN, 2024, 6, 12, 7, 0)
            clock.advance(1.0)
            await settle()
            clock.set(true_set_s - 30)
            while clock.now() < true_set_s + 2:
                clock.advance(1.0)
                await settle()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            return clock, speaker, task

        _, speaker, task = asyncio.run(main())
        assert speaker.plays[0] == true_set_s
        assert task.last_ring_s == true_set_s

    def test_clock_stepped_far_forward_skips_instead_of_ringing_hours_late(self) -> None:
        set_s = local(BERLIN, 2024, 6, 10, 7, 0)

        async def main() -> Harness:
            h = Harness(set_s - 60)
            await h.start()
            await h.step_until(set_s - 50)
            h.clock.advance(4 * 3600.0)
            await settle()
            await h.step_until(h.clock.now() + 5)
            await h.close()
            return h

        h = asyncio.run(main())
        assert h.speaker.events == []
        missed = [e for e in h.events if e.kind == "alarm_missed"]
        assert len(missed) == 1 and json.loads(missed[0].detail)["rang_at_s"] is None
        assert h.task.next_ring_s == local(BERLIN, 2024, 6, 11, 7, 0)


class SteppableClock:
    """A wall clock that can be stepped backwards (like NTP), with monotonic sleeps."""

    def __init__(self, start_s: float) -> None:
        self._wall = start_s
        self._mono = 0.0
        self._changed: asyncio.Event | None = None

    def now(self) -> float:
        return self._wall

    def set(self, t_s: float) -> None:
        self._wall = t_s
        self._wake()

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._mono += seconds
        self._wake()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def sleep(self, seconds: float) -> None:
        wake_at = self._mono + max(0.0, seconds)
        while self._mono < wake_at:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()


def test_a_restarted_alarm_task_keeps_todays_alarm() -> None:
    """The supervisor restarts a crashed run(): today's ringing alarm goes on ringing."""
    tz = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 1, 13, 6, 40, tzinfo=tz).timestamp()
    set_s = datetime(2026, 1, 13, 7, 0, tzinfo=tz).timestamp()
    clock = VirtualClock(start)
    speaker = SimulatedSpeaker(clock)
    task = AlarmTask(clock, speaker, AlarmConfig(time="07:00", window_min=30.0), tz)

    async def main() -> None:
        first = asyncio.create_task(task.run())
        await asyncio.sleep(0)  # let it arm at 06:40
        await clock.run_until(set_s + 2.0)
        first.cancel()  # as if it had crashed while ringing
        with contextlib.suppress(asyncio.CancelledError):
            await first
        second = asyncio.create_task(task.run())
        await asyncio.sleep(0)
        await clock.run_until(set_s + 30.0)
        second.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await second

    asyncio.run(main())
    plays = [t for t, kind in speaker.events if kind == "play"]
    assert plays and set_s <= plays[0] <= set_s + 1.0
    assert any(t > set_s + 2.0 for t in plays)  # still ringing after the restart, not tomorrow
