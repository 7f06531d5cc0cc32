"""Tests of ringing: the store-backed AlarmTask (restart, no double ring, reload), snooze, dismiss,
missed, the volume ramp, the fail-safes (no epochs, a failing store), the latest-safe policy and
the backstop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import alarm_schedule as sched
from appliance.alarm import AlarmTask, SmartAlarm
from appliance.backstop import backstop
from appliance.clock import VirtualClock
from appliance.config import AlarmConfig
from appliance.errors import StoreError
from appliance.frames import (
    ABSENT,
    EPOCH_S,
    EpochFeatures,
    PresenceState,
    SessionEvent,
    Stage,
    StagedEpoch,
    Target,
    TrackedSecond,
)
from appliance.store import Store
from appliance.wake_policy import FirstWakeablePolicy, LatestSafePolicy
from hardware.speaker import SimulatedSpeaker

BERLIN = ZoneInfo("Europe/Berlin")
SET_S = datetime(2024, 6, 11, 7, 0, tzinfo=BERLIN).timestamp()


def staged(
    end_s: float, stage: int, probs: tuple[float, float, float, float] | None = None
) -> StagedEpoch:
    p = [0.0, 0.0, 0.0, 0.0]
    if stage >= 0:
        p[stage] = 1.0
    pr = probs or (p[0], p[1], p[2], p[3])
    f = EpochFeatures(
        end_s - EPOCH_S, int(end_s // EPOCH_S) - 1, 1.0, (), None, None, None, 0.0, 1.0
    )
    return StagedEpoch(end_s - EPOCH_S, int(end_s // EPOCH_S) - 1, stage, pr, max(pr), f)


def second(t_s: float, movement: float) -> TrackedSecond:
    tgt = Target(0.8, 20.0, 3.0, 14.0, 60.0, movement, 0.9)
    return TrackedSecond(t_s, PresenceState(t_s, True, 0.9, "still"), tgt, 0)


class FlakyStore:
    """A store whose every call raises StoreError (a dead SD card)."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*args: object, **kwargs: object) -> Any:
            raise StoreError(f"simulated failure in {name}")

        return fail


class Rig:
    def __init__(
        self,
        start_s: float,
        store: Any = None,
        *,
        cfg: AlarmConfig | None = None,
        policy: Any = None,
        speaker: SimulatedSpeaker | None = None,
    ) -> None:
        self.clock = VirtualClock(start_s)
        self.speaker = speaker or SimulatedSpeaker(self.clock)
        self.events: list[SessionEvent] = []
        self.task = AlarmTask(
            self.clock,
            self.speaker,
            cfg or AlarmConfig(time="07:00"),
            BERLIN,
            self.events.append,
            store=store,
            policy=policy,
        )
        self.runner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.runner = asyncio.create_task(self.task.run())
        await asyncio.sleep(0)

    async def until(self, t_s: float) -> None:
        await self.clock.run_until(t_s)

    async def close(self) -> None:
        assert self.runner is not None
        self.runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.runner

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --------------------------------------------------------------------------------------------
# Restarts and the store


def test_restart_two_minutes_before_rings_at_the_set_time(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"

    async def main() -> tuple[Rig, Rig]:
        with Store.open(db) as store:
            first = Rig(SET_S - 3600, store)
            await first.start()
            await first.until(SET_S - 120)
            await first.close()  # the daemon dies at 06:58
        with Store.open(db) as store:
            second_ = Rig(SET_S - 120, store)
            await second_.start()
            assert second_.task.next_ring_s == SET_S
            await second_.until(SET_S + 5)
            await second_.close()
        return first, second_

    first, second_ = run(main())
    assert first.speaker.plays == []
    assert second_.speaker.plays[0] == SET_S
    with Store.open(db) as store:
        st = store.alarm_states()[0]
        assert (st.set_s, st.status, st.rang_at_s) == (SET_S, "ringing", SET_S)


def test_no_double_ring_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"

    async def main() -> Rig:
        with Store.open(db) as store:
            r = Rig(SET_S - 10, store)
            await r.start()
            await r.until(SET_S + 20)
            assert r.task.dismiss()
            await r.until(SET_S + 30)
            await r.close()
        with Store.open(db) as store:  # restarted a minute later, within the ring_max lookback
            again = Rig(SET_S + 60, store)
            await again.start()
            await again.until(SET_S + 600)
            await again.close()
            return again

    again = run(main())
    assert again.speaker.plays == []
    assert again.task.next_ring_s == SET_S + 86400


def test_restart_while_ringing_goes_on_ringing(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"

    async def main() -> Rig:
        with Store.open(db) as store:
            r = Rig(SET_S - 5, store, cfg=AlarmConfig(time="07:00", ring_max_min=5))
            await r.start()
            await r.until(SET_S + 10)
            await r.close()  # crashed while ringing
        with Store.open(db) as store:
            again = Rig(SET_S + 70, store, cfg=AlarmConfig(time="07:00", ring_max_min=5))
            await again.start()
            await again.until(SET_S + 400)
            await again.close()
            return again

    again = run(main())
    assert again.speaker.plays[0] == SET_S + 70
    assert json.loads(again.events[0].detail)["reason"] == "resumed"
    # ring_max counts from the first ring at 07:00, not from the restart.
    assert again.kinds()[-1] == "alarm_missed"
    assert again.events[-1].t_s == SET_S + 300


def test_cli_change_is_picked_up_by_the_running_task(tmp_path: Path) -> None:
    async def main() -> Rig:
        with Store.open(tmp_path / "s.sqlite") as store:
            r = Rig(SET_S - 7200, store, cfg=AlarmConfig(), policy=FirstWakeablePolicy())
            await r.start()
            assert r.task.next_ring_s is None
            await r.until(SET_S - 3600)
            sched.set_alarm(store, r.clock.now(), "06:30", days="daily", window_min=0)
            await r.until(SET_S - 3600 + 31)  # within one reload period
            assert r.task.next_ring_s == SET_S - 1800
            sched.set_alarm(store, r.clock.now(), "06:40", days="daily", window_min=0, alarm_id=1)
            r.task.reload()
            await r.until(SET_S - 3600 + 33)
            assert r.task.next_ring_s == SET_S - 1200
            await r.until(SET_S - 1200 + 2)
            await r.close()
            return r

    r = run(main())
    assert r.speaker.plays[0] == SET_S - 1200


def test_skip_next_on_the_running_task(tmp_path: Path) -> None:
    async def main() -> Rig:
        with Store.open(tmp_path / "s.sqlite") as store:
            r = Rig(SET_S - 3600, store)
            await r.start()
            sched.skip_next(store, BERLIN, r.clock.now(), 0)
            r.task.reload()
            await r.until(SET_S + 60)
            assert r.task.next_ring_s == SET_S + 86400
            await r.close()
            return r

    assert run(main()).speaker.plays == []


# --------------------------------------------------------------------------------------------
# Snooze, dismiss, missed, volume


def test_snooze_then_dismiss() -> None:
    async def main() -> Rig:
        r = Rig(SET_S - 5, cfg=AlarmConfig(time="07:00", snooze_min=9))
        await r.start()
        await r.until(SET_S + 10)
        assert r.task.snooze()
        assert not r.task.snooze()  # already snoozed
        await r.until(SET_S + 10 + 9 * 60 - 1)
        assert r.task.alarm is not None and r.task.alarm.state == "snoozed"
        await r.until(SET_S + 10 + 9 * 60 + 1)
        assert r.task.alarm.state == "ringing"
        assert r.task.dismiss()
        await r.until(SET_S + 3600)
        await r.close()
        return r

    r = run(main())
    assert r.kinds() == [
        "smart_window_open",
        "alarm_ringing",
        "alarm_snoozed",
        "alarm_ringing",
        "alarm_dismissed",
    ]
    re_ring = r.events[3]
    assert re_ring.t_s == SET_S + 10 + 540 and json.loads(re_ring.detail)["reason"] == "snooze"
    assert [p for p in r.speaker.plays if SET_S + 10 < p < SET_S + 550] == []
    assert r.task.next_ring_s == SET_S + 86400


def test_nobody_stops_it_missed_after_ring_max() -> None:
    async def main() -> Rig:
        r = Rig(SET_S - 5, cfg=AlarmConfig(time="07:00", ring_max_min=30))
        await r.start()
        await r.until(SET_S + 3600)
        await r.close()
        return r

    r = run(main())
    assert r.kinds()[-2:] == ["alarm_ringing", "alarm_missed"]
    assert r.events[-1].t_s == SET_S + 1800
    assert max(r.speaker.plays) < SET_S + 1800
    assert r.speaker.events[-1] == (SET_S + 1800, "stop")


class RampSpeaker(SimulatedSpeaker):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.volumes: list[float] = []

    def set_volume(self, fraction: float) -> None:
        self.volumes.append(fraction)


def test_volume_ramps_from_start_to_full() -> None:
    clock = VirtualClock(SET_S - 5)
    spk = RampSpeaker(clock)

    async def main() -> None:
        cfg = AlarmConfig(time="07:00", volume_ramp_s=40.0, volume_start=0.2)
        task = AlarmTask(clock, spk, cfg, BERLIN)
        runner = asyncio.create_task(task.run())
        await asyncio.sleep(0)
        await clock.run_until(SET_S + 60)
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner

    run(main())
    assert spk.volumes[0] == pytest.approx(0.2)
    assert all(b >= a for a, b in zip(spk.volumes, spk.volumes[1:], strict=False))
    assert spk.volumes[-1] == 1.0


# --------------------------------------------------------------------------------------------
# Fail-safes


def test_store_failing_still_rings_the_config_alarm_at_the_set_time() -> None:
    async def main() -> Rig:
        r = Rig(SET_S - 600, FlakyStore())
        await r.start()
        await r.until(SET_S + 3)
        assert r.task.dismiss()
        await r.until(SET_S + 120)
        await r.close()
        return r

    r = run(main())
    assert r.speaker.plays[0] == SET_S
    assert r.task.next_ring_s == SET_S + 86400  # handled in memory: no second ring


def test_store_failing_after_a_good_read_keeps_the_schedule(tmp_path: Path) -> None:
    async def main() -> Rig:
        store = Store.open(tmp_path / "s.sqlite")
        sched.set_alarm(store, SET_S - 7200, "06:50", days="daily", window_min=0)
        r = Rig(SET_S - 3600, store, cfg=AlarmConfig())
        await r.start()
        assert r.task.next_ring_s == SET_S - 600
        store.close()  # from now on every call raises StoreError
        await r.until(SET_S - 600 + 2)
        await r.close()
        return r

    r = run(main())
    assert r.speaker.plays[0] == SET_S - 600


def test_stager_dead_no_epochs_at_all_rings_at_set_time(tmp_path: Path) -> None:
    async def main() -> Rig:
        with Store.open(tmp_path / "s.sqlite") as store:
            r = Rig(SET_S - 7200, store, policy=LatestSafePolicy())
            await r.start()
            await r.until(SET_S + 2)
            await r.close()
            return r

    r = run(main())
    assert r.speaker.plays[0] == SET_S
    assert json.loads(r.events[1].detail)["reason"] == "deadline"


def test_stager_stuck_on_deep_rings_at_set_time() -> None:
    async def main() -> Rig:
        r = Rig(SET_S - 3600, policy=LatestSafePolicy())
        await r.start()
        t = SET_S - 3600 + EPOCH_S
        while t <= SET_S + 5:
            await r.until(t)
            r.task.feed(staged(t, Stage.DEEP))
            t += EPOCH_S
        await r.close()
        return r

    r = run(main())
    assert r.speaker.plays[0] == SET_S


def test_a_failing_policy_never_stops_the_deadline() -> None:
    class Broken:
        def observe(self, epoch: StagedEpoch) -> None:
            raise RuntimeError("bug")

        def ring_now(self, *args: object) -> bool:
            raise RuntimeError("bug")

    a = SmartAlarm(SET_S, 1800.0, policy=Broken())
    assert a.update_epoch(staged(SET_S - 3000, Stage.DEEP), SET_S - 3000) is None
    assert a.update_time(SET_S - 1) == "window_open"
    assert a.update_time(SET_S) == "ring" and a.reason == "deadline"


# --------------------------------------------------------------------------------------------
# The smart window


def test_latest_safe_waits_on_early_light_and_rings_late_in_the_window() -> None:
    pol = LatestSafePolicy()
    a = SmartAlarm(SET_S, 1800.0, policy=pol)
    ws = a.window_start_s
    a.update_time(ws)
    # Light sleep all through the window: the first light epoch does not ring...
    assert a.update_epoch(staged(ws + 30, Stage.LIGHT), ws + 30) is None
    t = ws + 31
    while a.rang_at_s is None and t <= SET_S:
        a.update_time(t)
        if (t - ws) % EPOCH_S == 0:
            a.update_epoch(staged(t, Stage.LIGHT), t)
        t += 1
    # ...it rings (in light sleep) keeping at least 20 of the 30 minutes, never after SET_S.
    assert a.rang_at_s is not None and ws + 20 * 60 <= a.rang_at_s <= SET_S


def test_latest_safe_rings_on_a_light_epoch_late_in_the_window_after_deep() -> None:
    a = SmartAlarm(SET_S, 1800.0, policy=LatestSafePolicy())
    t = SET_S - 3 * 3600.0
    while t < SET_S - 150:  # deep sleep all morning
        a.update_time(t)
        assert a.update_epoch(staged(t, Stage.DEEP), t) is None
        t += EPOCH_S
    # Light from two minutes before the set time: it rings then (on a light epoch, or at the
    # deadline if it judged the sleeper still too likely in deep sleep), never later.
    t = SET_S - 120
    while a.rang_at_s is None and t <= SET_S:
        a.update_time(t)
        if (SET_S - t) % EPOCH_S == 0:
            a.update_epoch(staged(t, Stage.LIGHT), t)
        t += 1
    assert a.rang_at_s is not None and SET_S - 120 <= a.rang_at_s <= SET_S


def test_ring_now_depends_on_time_left() -> None:
    pol = LatestSafePolicy()
    light = np.array([0.0, 1.0, 0.0, 0.0])
    ws = SET_S - 1800
    assert not pol.ring_now(light, ws + 60, ws, SET_S)  # plenty of time: keep sleeping
    assert pol.ring_now(light, SET_S - 10, ws, SET_S)  # the last moment: ring
    shaky = np.array([0.0, 0.3, 0.7, 0.0])  # a deep transition is predicted
    stop, _ = pol.values(SET_S - 600, ws, SET_S)
    assert shaky @ stop < light @ stop


def test_movement_burst_is_a_wakeable_moment() -> None:
    a = SmartAlarm(SET_S, 1800.0, policy=FirstWakeablePolicy())
    now = SET_S - 600
    a.update_time(now)
    assert a.update_second(now - 1, 1.0, now) is None  # breathing only
    assert a.update_second(now, 20.0, now) is None  # one second is not a burst
    assert a.update_second(now + 1, 25.0, now + 1) == "ring"
    assert a.reason == "smart"


def test_task_feed_second_rings_on_a_burst_in_the_window() -> None:
    async def main() -> Rig:
        r = Rig(SET_S - 900, policy=FirstWakeablePolicy())
        await r.start()
        await r.until(SET_S - 300)
        r.task.feed_second(second(SET_S - 301, 15.0))
        r.task.feed_second(second(SET_S - 300, 15.0))
        await r.until(SET_S - 295)
        await r.close()
        return r

    assert run(main()).speaker.plays[0] == SET_S - 300


_stages = st.sampled_from([int(s) for s in Stage] + [ABSENT])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    window_min=st.floats(0.0, 45.0),
    stages=st.lists(_stages, min_size=1, max_size=400),
    probs=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
    bursts=st.lists(st.integers(0, 45 * 60), max_size=10),
    bad_wake=st.one_of(st.none(), st.floats(0.5, 500.0)),
)
def test_latest_safe_never_late_never_before_the_window(
    window_min: float,
    stages: list[int],
    probs: list[float],
    bursts: list[int],
    bad_wake: float | None,
) -> None:
    set_s = SET_S + 7.3
    a = SmartAlarm(set_s, window_min * 60.0, policy=LatestSafePolicy(bad_wake))
    t0 = set_s - len(stages) * EPOCH_S - 60.0
    p = (probs[0], probs[1], probs[2], probs[3])
    ends = {round(t0 + (k + 1) * EPOCH_S): s for k, s in enumerate(stages)}
    burst_at = {round(set_s - b) for b in bursts}
    t = round(t0)
    while a.rang_at_s is None and t <= set_s + 2:
        a.update_time(float(t))
        if t in ends:
            a.update_epoch(staged(float(t), ends[t], p if sum(p) > 0 else None), float(t))
        if t in burst_at or t - 1 in burst_at:
            a.update_second(float(t), 30.0, float(t))
        t += 1
    assert a.rang_at_s is not None
    assert a.window_start_s <= a.rang_at_s <= set_s + 1.0
    if a.reason == "smart":
        assert a.rang_at_s < set_s


# --------------------------------------------------------------------------------------------
# The backstop


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_backstop_rings_a_due_alarm_once(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        sched.set_alarm(store, SET_S - 86400, "07:00", days="daily", sound="birdsong")
        cfg = AlarmConfig()
        c = Clock(SET_S - 60)
        spk = SimulatedSpeaker(c, sound="bowl")
        assert backstop(store, cfg, BERLIN, spk, now=c.now, sleep=c.sleep).action == "nothing_due"
        c.t = SET_S + 30
        res = backstop(store, cfg, BERLIN, spk, now=c.now, sleep=c.sleep, ring_s=20.0)
        assert res.action == "rang" and res.set_s == SET_S and res.ids == (1,)
        assert spk.plays[0] == SET_S + 30 and spk.events[-1][1] == "stop"
        assert {p.sound for p in spk.played} == {"birdsong"}  # the alarm's own sound
        c.t = SET_S + 90  # the next minute: already rung
        assert backstop(store, cfg, BERLIN, spk, now=c.now, sleep=c.sleep).action == "nothing_due"
        assert store.alarm_states()[1].status == "backstop"
        c.t = SET_S + 86400 + 20  # tomorrow rings again
        assert backstop(store, cfg, BERLIN, spk, now=c.now, sleep=c.sleep).action == "rang"


def test_backstop_stays_quiet_while_the_daemon_beats(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        store.beat(SET_S - 20)
        c = Clock(SET_S + 10)
        spk = SimulatedSpeaker(c)
        res = backstop(store, AlarmConfig(time="07:00"), BERLIN, spk, now=c.now, sleep=c.sleep)
        assert res.action == "daemon_alive" and spk.plays == []


def test_backstop_without_a_store_rings_the_config_alarm_in_its_minute() -> None:
    c = Clock(SET_S + 30)
    spk = SimulatedSpeaker(c)
    cfg = AlarmConfig(time="07:00")
    assert backstop(None, cfg, BERLIN, spk, now=c.now, sleep=c.sleep, ring_s=8).action == "rang"
    c.t = SET_S + 90
    assert backstop(None, cfg, BERLIN, spk, now=c.now, sleep=c.sleep).action == "nothing_due"


def test_daemon_after_backstop_does_not_ring_again(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    with Store.open(db) as store:
        store.put_alarm(sched.Alarm(id=0, time="07:00", created_s=SET_S - 86400))
        c = Clock(SET_S + 20)
        backstop(
            store, AlarmConfig(time="07:00"), BERLIN, SimulatedSpeaker(c), now=c.now, sleep=c.sleep
        )

    async def main() -> Rig:
        with Store.open(db) as store:
            r = Rig(SET_S + 120, store)
            await r.start()
            await r.until(SET_S + 600)
            await r.close()
            return r

    assert run(main()).speaker.plays == []


def test_each_alarm_rings_its_own_sound_and_the_default_is_the_config_speakers(
    tmp_path: Path,
) -> None:
    async def main() -> Rig:
        with Store.open(tmp_path / "s.sqlite") as store:
            speaker = SimulatedSpeaker(sound="bowl")  # the config's [speaker] sound
            r = Rig(SET_S - 7200, store, cfg=AlarmConfig(), speaker=speaker)
            now = r.clock.now()
            sched.set_alarm(store, now, "06:00", days="once", window_min=0, sound="birdsong")
            sched.set_alarm(store, now, "06:30", days="once", window_min=0)
            with pytest.raises(sched.AlarmInputError, match="unknown sound"):
                sched.set_alarm(store, now, "06:45", sound="klaxon")
            await r.start()
            for t in (SET_S - 3600, SET_S - 1800):
                await r.until(t + 5)
                assert r.task.dismiss()
            await r.close()
            return r

    r = run(main())
    assert [(p.t_s, p.sound) for p in r.speaker.played] == [
        (SET_S - 3600, "birdsong"),
        (SET_S - 3600 + 4, "birdsong"),
        (SET_S - 1800, "bowl"),
        (SET_S - 1800 + 4, "bowl"),
    ]


def test_the_daemons_reporting_speaker_passes_the_alarms_sound_on() -> None:
    from appliance.health import Health, ReportingSpeaker

    inner = SimulatedSpeaker(sound="bowl")
    wrapped = ReportingSpeaker(inner, Health(VirtualClock(0.0)))
    wrapped.set_sound("birdsong")
    wrapped.play(1.0)
    wrapped.set_sound("")
    wrapped.play(2.0)
    assert [p.sound for p in inner.played] == ["birdsong", "bowl"]
