"""EnvironmentMonitor fault handling, probing and the [environment] config."""

import itertools
import logging

import pytest

from appliance.config import EnvironmentConfig, parse_config
from appliance.environment import EnvironmentMonitor, open_environment, probe_environment
from appliance.errors import ConfigError
from hardware.environment import Sht4x, Tsl2591
from hardware.environment.fakes import Ambient, FakeI2CBus, FakeSht4x, FakeTsl2591, simulated_bus

T0 = 1_767_000_000.0
CFG = EnvironmentConfig(interval_s=30.0, fail_after=3, stuck_after_s=600.0)


class Room:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> Ambient:
        # A few counts of "noise" per sample, as a real part has.
        wiggle = ((self.t // 30) % 97) * 0.002
        return Ambient(19.0 + wiggle, 45.0 + wiggle, 1013.0, 0.02 + wiggle / 100)


@pytest.fixture
def rig():
    room = Room()
    sht, tsl = FakeSht4x(room), FakeTsl2591(room)
    bus = FakeI2CBus([sht, tsl])
    sensors = [Sht4x(bus, sleep=bus.sleep), Tsl2591(bus, sleep=bus.sleep)]
    for s in sensors:
        s.probe()
    return room, sht, tsl, EnvironmentMonitor(sensors, CFG)


def run(room, mon, n, start_s):
    out = []
    for i in range(n):
        room.t = start_s + 30.0 * i
        out.append(mon.sample(room.t))
    return out


def test_healthy_sample_has_typed_values_and_rows(rig):
    room, _, _, mon = rig
    r = mon.sample(T0)
    assert r.temperature_c == pytest.approx(room().temperature_c, abs=0.01)
    assert r.lux == pytest.approx(room().lux, rel=0.05)
    assert r.pressure_hpa is None
    assert [h.state for h in r.health] == ["ok", "ok"]
    rows = r.rows()
    assert [(s, q, u) for s, q, _, u in rows] == [
        ("sht4x", "temperature", "degC"),
        ("sht4x", "humidity", "%RH"),
        ("tsl2591", "illuminance", "lx"),
    ]


def test_nack_episode_logs_once_backs_off_goes_unavailable_and_recovers(rig, caplog):
    room, sht, _, mon = rig
    caplog.set_level(logging.INFO, logger="appliance.environment")
    sht.nack = True
    before = sht.transactions
    out = run(room, mon, 40, T0)
    assert all(r.temperature_c is None for r in out)
    assert all(r.lux is not None for r in out)  # the other sensor is unaffected
    states = [r.health[0].state for r in out]
    assert states[0] == "failing"
    assert "unavailable" in states
    # back-off: 40 samples, but retries at 1, 2, 4, 8, 10, 10 ... intervals
    attempts = (
        sum(1 for a, b in itertools.pairwise(out) if b.health[0].failures != a.health[0].failures)
        + 1
    )
    assert attempts == 1 + 1 + 1 + 1 + 3  # t=0, 30, 90, 210, 450, 750, 1050
    assert sht.transactions == before  # a NACKed device never counts a transaction
    warnings = [m for m in caplog.messages if "sht4x" in m]
    assert len(warnings) == 2  # "reading invalid" once, "unavailable" once
    assert "NACK" in warnings[0]
    assert out[-1].health[0].last_error == "no answer (NACK)"

    sht.nack = False
    t = out[-1].t_s
    later = run(room, mon, 12, t + 30.0)
    recovered = next(r for r in later if r.temperature_c is not None)
    assert recovered.health[0].state == "ok"
    assert recovered.health[0].last_error is None
    assert sum("recovered" in m for m in caplog.messages) == 1


def test_crc_errors_fail_then_recover(rig):
    room, sht, _, mon = rig
    sht.crc_error = True
    out = run(room, mon, 2, T0)
    assert out[0].temperature_c is None
    assert out[0].health[0].state == "failing"
    assert "CRC" in out[0].health[0].last_error
    sht.crc_error = False
    out = run(room, mon, 2, T0 + 60.0)
    assert out[0].temperature_c is None  # two failures: backing off for 60 s
    assert out[1].temperature_c is not None
    assert out[1].health[0].state == "ok"


def test_stuck_raw_values_are_detected_and_clear_when_they_move(rig):
    room, sht, _, mon = rig
    sht.stuck = True
    out = run(room, mon, 30, T0)  # 15 minutes of identical words; stuck_after_s = 10 min
    first_bad = next(i for i, r in enumerate(out) if r.temperature_c is None)
    assert first_bad == 20  # 600 s after the first identical word
    assert out[first_bad].health[0].last_error.startswith("stuck")
    sht.stuck = False
    out = run(room, mon, 12, T0 + 30.0 * 30)  # within one maximal back-off (300 s)
    valid = [r for r in out if r.temperature_c is not None]
    assert valid and valid[0].health[0].state == "ok"
    assert all(r.temperature_c is not None for r in out[out.index(valid[0]) :])


def test_implausible_value_is_invalid(rig):
    _, sht, _, mon = rig
    sht.ambient = lambda: Ambient(80.0, 45.0, 1013.0, 1.0)
    r = mon.sample(T0)
    assert r.temperature_c is None and r.humidity_pct is None
    assert "implausible temperature_c 80" in r.health[0].last_error


def test_a_driver_bug_never_escapes_the_monitor(rig):
    mon = rig[3]

    def broken(*_a):
        raise RuntimeError("boom")

    mon.sensors[1].read = broken
    r = mon.sample(T0)
    assert r.lux is None
    assert r.health[1].last_error == "RuntimeError: boom"


def test_probe_auto_finds_what_is_there_and_keeps_named_missing_parts():
    bus = simulated_bus(lambda: T0, parts=("bme280", "veml7700"))
    found = probe_environment(bus, EnvironmentConfig(), sleep=bus.sleep)
    assert [(f.sensor.name, f.present) for f in found] == [("bme280", True), ("veml7700", True)]
    assert found[0].identity is not None and "0x60" in found[0].identity

    empty = FakeI2CBus()
    assert probe_environment(empty, EnvironmentConfig(), sleep=empty.sleep) == []
    named = probe_environment(
        empty, EnvironmentConfig(climate="sht4x", light="none"), sleep=empty.sleep
    )
    assert [(f.sensor.name, f.present, f.identity) for f in named] == [("sht4x", False, None)]
    mon = EnvironmentMonitor([f.sensor for f in named], CFG)
    states = [mon.sample(T0 + 30.0 * i).health[0].state for i in range(20)]
    assert states[-1] == "unavailable"
    assert probe_environment(empty, EnvironmentConfig(enabled=False)) == []


def test_open_environment_simulated_twin_samples_the_night():
    now = [T0]
    mon = open_environment(EnvironmentConfig(), simulated=True, clock=lambda: now[0])
    assert mon is not None
    assert [s.name for s in mon.sensors] == ["sht4x", "tsl2591"]
    r = mon.sample(now[0])
    assert r.temperature_c is not None and 17.0 < r.temperature_c < 21.0
    assert r.lux is not None
    assert (
        open_environment(EnvironmentConfig(enabled=False), simulated=True, clock=time_zero) is None
    )


def time_zero() -> float:
    return 0.0


def test_open_environment_without_a_bus_is_none(caplog):
    cfg = EnvironmentConfig(i2c_bus=250)
    assert open_environment(cfg, simulated=False, clock=time_zero) is None
    assert any("i2c-250" in m for m in caplog.messages)


def test_config_section_defaults_and_errors():
    cfg = parse_config({})
    assert cfg.environment == EnvironmentConfig()
    assert cfg.environment.interval_s == 30.0 and cfg.environment.fail_after == 3
    assert (
        parse_config({"environment": {"light": "veml7700", "interval_s": 60}}).environment.light
        == "veml7700"
    )
    for bad, key in [
        ({"light": "bh1750"}, "environment.light"),
        ({"interval_s": 2}, "environment.interval_s"),
        ({"fail_after": 0}, "environment.fail_after"),
        ({"i2c_bus": "1"}, "environment.i2c_bus"),
        ({"interval_s": 600, "stuck_after_s": 600}, "environment"),
        ({"colour": 1}, "environment.colour"),
    ]:
        with pytest.raises(ConfigError) as e:
            parse_config({"environment": bad})
        assert e.value.key == key
