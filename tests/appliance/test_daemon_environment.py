"""The daemon samples the bedroom: readings stored, published, in the status and the report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import synthetic
from test_daemon import UTC, FakeRadar, _cfg, _daemon

from appliance.clock import VirtualClock
from appliance.config import EnvironmentConfig
from appliance.environment import open_environment
from appliance.report_data import night_report
from appliance.staging import Stager
from appliance.store import Store
from hardware.environment.fakes import BedroomNight


@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


def test_environment_is_sampled_stored_published_and_reported(
    tmp_path: Path, stager: Stager
) -> None:
    fr = synthetic.frames(300.0, absent=((240.0, 300.0),))
    clock = VirtualClock(float(fr.t_s[0]))
    mon = open_environment(
        EnvironmentConfig(interval_s=30.0),
        simulated=True,
        clock=clock.now,
        night=BedroomNight(tz=UTC),
    )
    assert mon is not None
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _ = _daemon(_cfg(), clock, FakeRadar(fr), store, stager)
        d.environment = mon
        sub = d.bus.subscribe(["environment"])
        asyncio.run(asyncio.wait_for(d.run(), timeout=60.0))
        readings = list(iter(sub.get_nowait, None))
        assert 9 <= len(readings) <= 11  # every 30 s over 5 min
        env = d.snapshot()["environment"]
        assert 10.0 < env["temperature_c"] < 30.0
        assert 20.0 < env["humidity_pct"] < 80.0
        assert env["illuminance_lux"] >= 0.0
        assert d.snapshot()["devices"]["climate:sht4x"]["status"] == "ok"
        rows = store.environment(0.0, 2e9)
        assert {r.quantity for r in rows} == {"temperature", "humidity", "illuminance"}
        (s,) = store.sessions()
        text, data = night_report(store, s)
        assert "Bedroom" in text and "Temperature" in text
        assert data["bedroom"]["temperature_c"]["min"] <= data["bedroom"]["temperature_c"]["max"]
