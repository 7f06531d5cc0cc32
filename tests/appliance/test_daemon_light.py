"""The daemon's light task: the sunrise of the next alarm ends at the set time, and the ring is
switched off when the alarm is stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import synthetic
from test_daemon import BERLIN, SET_S, FakeRadar, _cfg, _daemon, _settle

from appliance.clock import VirtualClock
from appliance.config import LightConfig
from appliance.runtime import light_from_config
from appliance.staging import Stager
from appliance.store import Store
from hardware.light.ring import SimulatedRing


@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


def test_the_sunrise_rises_to_the_set_time_and_goes_out_when_the_alarm_is_stopped(
    tmp_path: Path, stager: Stager
) -> None:
    start = SET_S - 2400.0  # 40 min before 07:00: the 30-min sunrise starts 10 min in
    clock = VirtualClock(start)
    light = light_from_config(LightConfig(sunrise_min=30.0), clock)
    assert light is not None
    with Store.open(tmp_path / "s.sqlite") as store:
        radar = FakeRadar(synthetic.frames(60.0, people=(), t0_s=start))
        d, speaker = _daemon(
            _cfg(time="07:00", window_min=0.0),
            clock,
            radar,
            store,
            stager,
            tz=BERLIN,
            finite_source=False,
        )
        d.light = light

        async def go() -> None:
            task = asyncio.create_task(d.run())
            await _settle()
            await clock.run_until(SET_S + 30.0)
            assert speaker.plays  # it rang at the set time
            d.alarm.stop()
            await clock.run_until(SET_S + 60.0)
            d.stop()
            await asyncio.wait_for(task, 10.0)

        asyncio.run(go())
    ring = light._ring
    assert isinstance(ring, SimulatedRing)
    lit = [(t, f) for t, f in ring.frames if f.any()]
    assert lit, "the sunrise never lit the ring"
    first_t = lit[0][0]
    assert SET_S - 1800.0 <= first_t <= SET_S - 1500.0
    # Brighter and brighter towards the set time (sums of 8-bit channels, dithering allowed).
    level = [float(f.astype(int).sum()) for t, f in lit if t <= SET_S]
    quarter = len(level) // 4
    assert np.mean(level[-quarter:]) > 10 * np.mean(level[:quarter])
    # Warm white at the end: red above blue, blue present.
    end = lit[-1][1] if lit[-1][0] <= SET_S + 30 else [f for t, f in lit if t <= SET_S][-1]
    r, g, b = end.astype(int).sum(axis=0)
    assert r > g > b > 0
    # Stopped: the ring is dark afterwards.
    assert not ring.frames[-1][1].any()


def test_the_rings_own_light_does_not_count_as_the_users_lamp(
    tmp_path: Path, stager: Stager
) -> None:
    clock = VirtualClock(SET_S - 600.0)  # inside the sunrise
    light = light_from_config(LightConfig(sunrise_min=30.0), clock)
    assert light is not None
    with Store.open(tmp_path / "s.sqlite") as store:
        radar = FakeRadar(synthetic.frames(60.0, people=(), t0_s=clock.now()))
        d, _ = _daemon(_cfg(time="07:00"), clock, radar, store, stager, tz=BERLIN)
        d.light = light
        light.arm_sunrise(SET_S)
        light.update(clock.now())
        emitted = light.emitted_lux_estimate
        assert emitted > 0.0
        d.status.environment["illuminance_lux"] = 0.01 + emitted  # a dark room, lit by the ring
        assert d._room_lux() is None
        d.status.environment["illuminance_lux"] = 200.0 + emitted  # the user's lamp is on
        assert d._room_lux() == pytest.approx(200.0)
        light.set_mode("off")
        light.cancel_sunrise()
        light.update(clock.now())
        d.status.environment["illuminance_lux"] = 3.0
        assert d._room_lux() == 3.0
