"""Clock jumps: NTP corrections by an hour either way during a night, and a boot without time.

The wall clock steps (`VirtualClock.step`) while sleeps keep their duration, as on the device
(`time.time()` steps, `asyncio.sleep` is monotonic). The radar stamps its frames on the clock,
as the A121 driver does, so a step reaches the epochs. What must hold:

- the alarm rings at the set local time of the corrected clock, once, never before it and
  never later than the first instant the clock shows it;
- the store never holds two epochs for the same time, and a backward step neither rewrites nor
  duplicates what was stored (epoch times strictly increase with their index);
- the night stays one session.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path

import pytest
from faults import ClockRadar
from test_daemon import BERLIN, SET_S, FakeRadar, _cfg, _daemon, _settle

from appliance.clock import VirtualClock
from appliance.daemon import Daemon
from appliance.frames import EPOCH_S
from appliance.staging import Stager
from appliance.store import EpochRow, Store
from hardware.speaker import SimulatedSpeaker

HOUR_S = 3600.0
MIN_S = 60.0
READ_S = 10.0
"""The daemon reads the radar in 10-s batches (daemon._BATCH_S)."""


@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


def _assert_clean_epochs(store: Store) -> list[EpochRow]:
    """One session whose epochs have unique indices and strictly increasing, gridded times."""
    sessions = store.sessions()
    assert len(sessions) == 1, [(s.id, s.started_s, s.ended_s) for s in sessions]
    rows = store.epochs(sessions[0].id)
    idx = [r.idx for r in rows]
    assert idx == sorted(set(idx)), "an epoch index was written twice or out of order"
    t = [r.t_s for r in rows]
    assert all(b - a >= EPOCH_S for a, b in itertools.pairwise(t)), "overlapping epochs"
    assert all(r.t_s == pytest.approx(r.idx * EPOCH_S) for r in rows)  # on the wall grid
    assert rows[0].t_s >= sessions[0].started_s
    assert store.integrity_ok()
    return rows


def _rings(d: Daemon) -> list[float]:
    return [e.t_s for e in d.alarm_events if e.kind == "alarm_ringing"]


def _alarm_only(
    clock: VirtualClock, store: Store, stager: Stager
) -> tuple[Daemon, SimulatedSpeaker]:
    """A daemon whose radar always fails: a 07:00 alarm (Berlin, no window) on the clock alone."""
    return _daemon(
        _cfg(time="07:00", window_min=0.0),
        clock,
        FakeRadar(None, always_fail=True),
        store,
        stager,
        tz=BERLIN,
        finite_source=False,
    )


def _night(
    tmp_path: Path,
    stager: Stager,
    *,
    start_s: float,
    radar_s: float,
    step_at_s: float,
    step_s: float,
    alarm: str = "07:00",
) -> tuple[Daemon, SimulatedSpeaker, Store, list[EpochRow], float]:
    """A night that starts at `start_s`; `step_at_s` after the start the clock steps `step_s`.

    Returns the daemon, its speaker, the (open) store, the epochs stored before the step, and
    the wall time just after the step.
    """
    clock = VirtualClock(start_s)
    store = Store.open(tmp_path / "s.sqlite")
    before: list[EpochRow] = []
    after_step: list[float] = []
    step_read = int(step_at_s / READ_S) + 1

    def on_read(k: int) -> None:
        if k == step_read:
            (s,) = store.sessions()
            before.extend(store.epochs(s.id))
            clock.step(step_s)
            after_step.append(clock.now())

    radar = ClockRadar(clock, radar_s, on_read=on_read)
    d, speaker = _daemon(_cfg(time=alarm, window_min=0.0), clock, radar, store, stager, tz=BERLIN)
    asyncio.run(asyncio.wait_for(d.run(), timeout=60.0))
    assert after_step, "the step was never made"
    return d, speaker, store, before, after_step[0]


def test_ntp_steps_forward_an_hour_during_the_night(tmp_path: Path, stager: Stager) -> None:
    """05:20 in bed; at 05:40 NTP sets the clock to 06:40; the alarm rings at 07:00."""
    start = SET_S - 100 * MIN_S
    d, speaker, store, before, _ = _night(
        tmp_path, stager, start_s=start, radar_s=30 * MIN_S, step_at_s=20 * MIN_S, step_s=HOUR_S
    )
    with store:
        rows = _assert_clean_epochs(store)
        assert len(rows) > len(before) >= 30  # epochs went on after the step
        assert rows[-1].t_s >= start + HOUR_S + 25 * MIN_S  # ... on the corrected clock
        assert _rings(d) == [SET_S]
        assert speaker.plays[0] == SET_S


def test_ntp_steps_back_an_hour_before_the_alarm(tmp_path: Path, stager: Stager) -> None:
    """06:00 in bed; at 06:05 NTP sets the clock back to 05:05; the 06:20 alarm rings at 06:20
    of the corrected clock, once (70 min of the night later)."""
    set_s = SET_S - 40 * MIN_S
    start = SET_S - 60 * MIN_S
    d, speaker, store, before, after = _night(
        tmp_path,
        stager,
        start_s=start,
        radar_s=70 * MIN_S,
        step_at_s=5 * MIN_S,
        step_s=-HOUR_S,
        alarm="06:20",
    )
    assert after == pytest.approx(start + 5 * MIN_S - HOUR_S, abs=READ_S)
    with store:
        rows = _assert_clean_epochs(store)
        # Nothing stored before the step was rewritten, and the repeated hour was not stored
        # again: the night continues after the time it had reached.
        by_idx = {r.idx: r for r in rows}
        assert before and all(by_idx[r.idx] == r for r in before)
        assert rows[-1].t_s > before[-1].t_s + 3 * MIN_S
        assert _rings(d) == [set_s]  # once, at 06:20 of the corrected clock
        assert speaker.plays[0] == set_s


def test_a_step_back_after_the_alarm_rang_does_not_ring_it_again(
    tmp_path: Path, stager: Stager
) -> None:
    clock = VirtualClock(SET_S - 60.0)
    with Store.open(tmp_path / "s.sqlite") as store:
        d, speaker = _alarm_only(clock, store, stager)

        async def main() -> None:
            task = asyncio.create_task(d.run())
            await _settle()
            await clock.run_until(SET_S + 30.0)
            assert d.alarm.dismiss()
            await clock.run_until(SET_S + 60.0)
            clock.step(-HOUR_S)  # 07:01 -> 06:01
            await clock.run_until(clock.now() + 2 * HOUR_S)  # past 07:00 again, to 08:01
            d.stop()
            await asyncio.wait_for(task, 10.0)

        asyncio.run(main())
        assert _rings(d) == [SET_S]
        assert speaker.plays[0] == SET_S
        assert all(p < SET_S + 60.0 for p in speaker.plays)
        assert d.alarm.next_ring_s == SET_S + 24 * HOUR_S  # tomorrow's, not today's again


@pytest.mark.parametrize(
    ("step_from_min", "rings"),
    [(-50.0, True), (-35.0, True), (-20.0, False)],
    ids=["06:10->07:10", "06:25->07:25", "06:40->07:40-missed"],
)
def test_a_step_forward_over_the_alarm(
    tmp_path: Path, stager: Stager, step_from_min: float, rings: bool
) -> None:
    """A step over the set time rings at the first instant the clock shows it, unless the alarm
    is then more than ring_max (30 min) late: that is reported missed, not rung hours late."""
    clock = VirtualClock(SET_S + step_from_min * 60.0 - 30.0)
    with Store.open(tmp_path / "s.sqlite") as store:
        d, speaker = _alarm_only(clock, store, stager)

        async def main() -> float:
            task = asyncio.create_task(d.run())
            await _settle()
            await clock.run_until(SET_S + step_from_min * 60.0)
            clock.step(HOUR_S)
            stepped = clock.now()
            await clock.run_until(stepped + 10.0)
            d.stop()
            await asyncio.wait_for(task, 10.0)
            return stepped

        stepped = asyncio.run(main())
        kinds = [e.kind for e in d.alarm_events]
        if rings:
            assert _rings(d) == [pytest.approx(stepped, abs=1.0)]
            assert speaker.plays[0] == pytest.approx(stepped, abs=1.0)
            assert "alarm_missed" not in kinds
            assert d.alarm.alarm is not None and d.alarm.alarm.state == "ringing"
        else:
            assert speaker.plays == [] and _rings(d) == []
            assert kinds.count("alarm_missed") == 1
            assert d.alarm.next_ring_s == SET_S + 24 * HOUR_S


def test_boot_without_network_time_resumes_the_night(
    tmp_path: Path, stager: Stager, caplog: pytest.LogCaptureFixture
) -> None:
    """A power cut at 06:10; the Pi (no RTC) boots with its clock in 1970 and the radar sees the
    sleeper at once; two minutes later NTP sets the right time (06:15). One night, resumed; no
    epoch of 1970 is stored; the 06:45 alarm rings at 06:45, and nothing rings or is missed in
    1970."""
    caplog.set_level(logging.INFO)
    start = SET_S - HOUR_S  # 06:00
    set_s = SET_S - 15 * MIN_S
    path = tmp_path / "s.sqlite"
    with Store.open(path) as store:
        clock = VirtualClock(start)
        holder: list[Daemon] = []

        def cut(k: int) -> None:
            if k == 61:  # 06:10: the power goes
                holder[0].stop()

        d1, _ = _daemon(
            _cfg(time="06:45", window_min=0.0),
            clock,
            ClockRadar(clock, 3 * HOUR_S, on_read=cut),
            store,
            stager,
            tz=BERLIN,
            finite_source=False,
        )
        holder.append(d1)
        asyncio.run(asyncio.wait_for(d1.run(), timeout=60.0))
        (s1,) = store.sessions()
        assert s1.is_open
        n_before = len(store.epochs(s1.id))

    boot_s = 10.0  # 1970-01-01 00:00:10 UTC
    true_s = start + 15 * MIN_S  # 06:15
    with Store.open(path) as store:
        clock = VirtualClock(boot_s)

        def ntp(k: int) -> None:
            if k == 13:  # two minutes after boot
                clock.step(true_s - clock.now())

        d2, speaker = _daemon(
            _cfg(time="06:45", window_min=0.0),
            clock,
            ClockRadar(clock, 20 * MIN_S, on_read=ntp, seed=5),
            store,
            stager,
            tz=BERLIN,
        )
        asyncio.run(asyncio.wait_for(d2.run(), timeout=60.0))
        rows = _assert_clean_epochs(store)
        assert len(rows) > n_before + 25  # the night went on after the time was set
        assert all(r.t_s > 1_000_000_000.0 for r in rows)
        kinds = [e.kind for e in store.events(s1.id)]
        assert "session_resumed" in kinds and "session_interrupted" not in kinds
        assert _rings(d2) == [set_s]
        assert speaker.plays[0] == set_s
        assert [e.kind for e in d2.alarm_events] == ["alarm_ringing"]  # nothing missed in 1970
        assert "behind the last stored epoch" in caplog.text
        health = d2.health.get("clock")
        assert health is not None and health.status == "ok"  # reported, then recovered
