"""Every device failing, alone and all at once: the daemon stays up, the alarm still rings (on
the next output of the speaker chain), and each failing part is reported in the status.

Faults are injected at the device's own seam, so the real driver code runs: a radar whose reads
raise, an A121 driver whose exploration server is down (a closed port on 127.0.0.1), the
environment sensors' fake I2C bus NACKing every transaction, `aplay` missing from PATH or
exiting with ALSA's error, a LED ring whose writes fail, a button whose GPIO cannot be claimed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from test_daemon import BERLIN, SET_S, FakeRadar, _cfg

from appliance.clock import VirtualClock
from appliance.config import EnvironmentConfig, RadarConfig
from appliance.control import Controller
from appliance.daemon import Daemon
from appliance.environment import EnvironmentMonitor, probe_environment
from appliance.errors import HardwareError
from appliance.staging import Stager
from appliance.store import Store
from hardware.buttons import ButtonEvent
from hardware.environment.fakes import BedroomNight, simulated_bus
from hardware.light import LightController, LightSettings
from hardware.light.ring import SimulatedRing
from hardware.radar.a121 import A121Radar
from hardware.radar.source import RadarSource
from hardware.speaker import AplaySpeaker, BuzzerSpeaker, FallbackSpeaker, Speaker

BUZZER_PIN = 13
START_S = SET_S - 300.0


@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


class _ExitedProc:
    """An `aplay` that has already exited with ALSA's error (what a missing card gives)."""

    returncode = 1

    def __init__(self, tmp: Path) -> None:
        err = tmp / f"aplay-err-{id(self)}"
        err.write_bytes(b"aplay: main:831: audio open error: No such device\n")
        self.stderr = err.open("rb")

    def poll(self) -> int:
        return 1

    def terminate(self) -> None:
        pass

    def kill(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> int:
        return 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rig:
    """The devices of one run, and what was done to them."""

    radar: RadarSource
    speaker: Speaker
    buzzer: BuzzerSpeaker | None
    light: LightController
    ring: SimulatedRing
    environment: EnvironmentMonitor
    button: Callable[[Callable[[ButtonEvent], None]], object]
    buzzing_at_end: bool = False


def _rig(tmp: Path, clock: VirtualClock, faults: set[str], monkeypatch: pytest.MonkeyPatch) -> Rig:
    # Radar.
    radar: RadarSource = FakeRadar(None)  # nothing to give: the alarm runs on the clock alone
    if "radar" in faults:
        radar = FakeRadar(None, always_fail=True)
    if "radar_server" in faults:
        cfg = RadarConfig(type="a121", a121_host="127.0.0.1", a121_port=_free_port())
        radar = A121Radar.from_config(cfg, clock)
    # Speaker chain: aplay on two devices, then the buzzer.
    bindir = tmp / "bin"
    bindir.mkdir()
    aplay = bindir / "aplay"
    aplay.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    aplay.chmod(aplay.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    if "aplay_missing" in faults:
        monkeypatch.setenv("PATH", str(tmp / "empty"))

    def popen(args: list[str], **kwargs: Any) -> Any:
        if "speaker" in faults:
            if "default" in args:
                return _ExitedProc(tmp)
            raise OSError(19, "No such device")
        return _ExitedOk()

    outputs: list[Speaker] = [
        AplaySpeaker("default", cache_dir=tmp / "cache", popen=popen),
        AplaySpeaker("plughw:CARD=USB", cache_dir=tmp / "cache", popen=popen),
    ]
    buzzer = None
    if "no_buzzer" not in faults:
        buzzer = BuzzerSpeaker(BUZZER_PIN, pin_factory=MockFactory())
        outputs.append(buzzer)
    speaker = FallbackSpeaker(outputs)
    # LED ring.
    ring = SimulatedRing(12, clock, fail_writes=10**9 if "light" in faults else 0)
    light = LightController(ring, LightSettings(sunrise_s=120.0))
    # Environment sensors on their (fake) I2C bus.
    env_cfg = EnvironmentConfig(climate="sht4x", light="tsl2591", fail_after=2)
    bus = simulated_bus(clock.now, BedroomNight(tz=BERLIN), ("sht4x", "tsl2591"))
    found = probe_environment(bus, env_cfg, sleep=bus.sleep)
    assert [f.present for f in found] == [True, True]
    if "i2c" in faults:
        for dev in bus.devices.values():
            dev.nack = True  # both parts stop answering (a loose cable)
    environment = EnvironmentMonitor([f.sensor for f in found], env_cfg)

    def button(sink: Callable[[ButtonEvent], None]) -> object:
        if "button" in faults:
            raise HardwareError("GPIO 17: pin busy (another process holds it)")
        return object()

    return Rig(radar, speaker, buzzer, light, ring, environment, button)


class _ExitedOk:
    """An `aplay` that played its sound and exited cleanly."""

    returncode = 0
    stderr = None

    def poll(self) -> int:
        return 0

    def terminate(self) -> None:
        pass

    def kill(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> int:
        return 0


def _run(
    tmp: Path, stager: Stager, faults: set[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Daemon, Rig, dict[str, Any], Store]:
    """Run the daemon from 06:55 to 07:00:30 with `faults`; return its status at 07:00:30."""
    clock = VirtualClock(START_S)
    rig = _rig(tmp, clock, faults, monkeypatch)
    store = Store.open(tmp / "s.sqlite")
    d = Daemon(
        _cfg(time="07:00", window_min=0.0),
        clock=clock,
        radar=rig.radar,
        speaker=rig.speaker,
        store=store,
        stager=stager,
        tz=BERLIN,
        environment=rig.environment,
        light=rig.light,
        button=rig.button,
    )

    async def main() -> dict[str, Any]:
        task = asyncio.create_task(d.run())
        for _ in range(20):
            await asyncio.sleep(0)
        await clock.run_until(SET_S + 30.0)
        assert not task.done(), "the daemon stopped"
        status = Controller(d).status()
        rig.buzzing_at_end = rig.buzzer is not None and rig.buzzer._beeping
        d.stop()
        await asyncio.wait_for(task, 10.0)
        return status

    return d, rig, asyncio.run(main()), store


def _lit_at_set_time(ring: SimulatedRing) -> bool:
    """The ring was lit at the set time (it goes out when the daemon stops)."""
    return any(f.any() for t, f in ring.frames if SET_S - 10.0 <= t <= SET_S + 10.0)


def _not_ok(status: dict[str, Any]) -> dict[str, str]:
    return {k: v["status"] for k, v in status["devices"].items() if v["status"] != "ok"}


CASES: dict[str, tuple[set[str], dict[str, set[str]]]] = {
    "none": (set(), {}),
    "radar_reads_raise": ({"radar"}, {"radar": {"failing"}}),
    # A source that cannot be reached is retried by the radar task itself: "unavailable".
    "radar_server_down": ({"radar_server"}, {"radar": {"unavailable"}}),
    "i2c_nack": ({"i2c"}, {"climate:sht4x": {"unavailable"}, "light:tsl2591": {"unavailable"}}),
    "aplay_fails": ({"speaker"}, {"speaker": {"failing"}}),
    "aplay_missing": ({"aplay_missing"}, {"speaker": {"failing"}}),
    "led_writes_fail": ({"light"}, {"light": {"failing"}}),
    "button_fails": ({"button"}, {"button": {"failing"}}),
    "all": (
        {"radar_server", "i2c", "aplay_missing", "light", "button"},
        {
            "radar": {"unavailable"},
            "climate:sht4x": {"unavailable"},
            "light:tsl2591": {"unavailable"},
            "speaker": {"failing"},
            "light": {"failing"},
            "button": {"failing"},
        },
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failing_devices_are_reported_and_the_alarm_still_rings(
    case: str, tmp_path: Path, stager: Stager, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults, expected = CASES[case]
    d, rig, status, store = _run(tmp_path, stager, faults, monkeypatch)
    with store:
        not_ok = _not_ok(status)
        assert set(not_ok) == set(expected), status["devices"]
        for part, allowed in expected.items():
            assert not_ok[part] in allowed, (part, status["devices"][part])
            assert status["devices"][part]["detail"], part  # says what went wrong
        # The alarm rang at 07:00, whatever else failed ...
        ringing = [e for e in d.alarm_events if e.kind == "alarm_ringing"]
        assert [e.t_s for e in ringing] == [SET_S]
        assert "alarm_speaker_failed" not in [e.kind for e in d.alarm_events]
        # ... on the buzzer when aplay could not play it.
        buzzing = rig.buzzing_at_end
        assert buzzing == bool(faults & {"speaker", "aplay_missing"})
        if buzzing:
            assert f"buzzer GPIO {BUZZER_PIN}" in status["devices"]["speaker"]["detail"]
        # Sensing went on where it could: the readings are None, not stale or made up.
        if "i2c" in faults:
            assert set(status["environment"].values()) == {None}
        else:
            assert status["environment"]["temperature_c"] is not None
        if "light" not in faults:
            assert _lit_at_set_time(rig.ring)  # the sunrise shows
        assert json.dumps(status)  # the status stays JSON, whatever failed


def test_no_speaker_at_all_keeps_retrying_and_rings_when_one_returns(
    tmp_path: Path, stager: Stager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aplay missing and no buzzer: the alarm is reported failing each second, the speaker
    unavailable, the sunrise still shows; once aplay is installed again the ring sounds."""
    clock = VirtualClock(START_S)
    rig = _rig(tmp_path, clock, {"aplay_missing", "no_buzzer"}, monkeypatch)
    with Store.open(tmp_path / "s.sqlite") as store:
        d = Daemon(
            _cfg(time="07:00", window_min=0.0),
            clock=clock,
            radar=rig.radar,
            speaker=rig.speaker,
            store=store,
            stager=stager,
            tz=BERLIN,
            light=rig.light,
        )

        async def main() -> tuple[dict[str, Any], dict[str, Any]]:
            task = asyncio.create_task(d.run())
            for _ in range(20):
                await asyncio.sleep(0)
            await clock.run_until(SET_S + 20.0)
            silent = Controller(d).status()
            monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # alsa-utils installed again
            await clock.run_until(SET_S + 30.0)
            back = Controller(d).status()
            d.stop()
            await asyncio.wait_for(task, 10.0)
            return silent, back

        silent, back = asyncio.run(main())
        assert silent["devices"]["speaker"]["status"] == "unavailable"
        assert "aplay not found" in silent["devices"]["speaker"]["detail"]
        kinds = [e.kind for e in d.alarm_events]
        assert kinds.count("alarm_ringing") == 1 and kinds.count("alarm_speaker_failed") == 1
        assert _lit_at_set_time(rig.ring)  # the light still wakes
        assert back["devices"]["speaker"]["status"] == "ok"
        assert d.alarm.alarm is not None and d.alarm.alarm.state == "ringing"
