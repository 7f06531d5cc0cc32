"""Speaker volume ramp, device check and the fallback chain ALSA -> ALSA -> buzzer."""

from __future__ import annotations

import shutil
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from appliance.clock import VirtualClock
from appliance.config import SOUND_NAMES, parse_config
from appliance.errors import HardwareError
from hardware.sounds import SOUNDS, sound_path
from hardware.speaker import (
    AplaySpeaker,
    BuzzerSpeaker,
    FallbackSpeaker,
    SimulatedSpeaker,
    Speaker,
    VolumeRamp,
    check_speaker,
    scale_wav,
    speaker_from_config,
)


class FakeProc:
    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.returncode: int | None = None
        self.stderr = None

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.returncode = -15

    def kill(self) -> None:
        self.returncode = -9

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode or 0


class FakePopen:
    def __init__(self) -> None:
        self.procs: list[FakeProc] = []

    def __call__(self, args: list[str], **kwargs: Any) -> FakeProc:
        self.procs.append(FakeProc(args))
        return self.procs[-1]


class FakeRun:
    def __init__(self, code: int = 0, stderr: bytes = b"") -> None:
        self.code, self.stderr = code, stderr
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        self.calls.append(args)
        return subprocess.CompletedProcess(args, self.code, b"", self.stderr)


@pytest.fixture
def aplay_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")


@pytest.fixture
def factory() -> Any:
    f = MockFactory()
    yield f
    f.reset()
    Device.pin_factory = None


def _peak(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        return int(np.abs(np.frombuffer(w.readframes(w.getnframes()), "<i2")).max())


def test_shipped_sounds_are_small_gentle_wavs() -> None:
    assert SOUNDS == SOUND_NAMES  # the config's list is the package's
    for name in SOUNDS:
        p = sound_path(name)
        with wave.open(str(p), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
            assert 2.0 <= w.getnframes() / 22050 <= 4.0
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert p.stat().st_size < 200_000
        assert 0.4 * 32767 < np.abs(pcm).max() <= 0.5 * 32767 + 1  # -6 dBFS peak
        assert abs(int(pcm[0])) < 200 and abs(int(pcm[-1])) < 200  # no click
    with pytest.raises(ValueError, match="unknown sound"):
        sound_path("klaxon")


def test_sounds_are_regenerated_byte_identical(tmp_path: Path) -> None:
    from hardware.sounds import make

    make.main(["--out", str(tmp_path)])
    for name in SOUNDS:
        assert (tmp_path / f"{name}.wav").read_bytes() == sound_path(name).read_bytes()


def test_volume_ramp_rises_evenly_in_db_to_full() -> None:
    r = VolumeRamp(ramp_s=60.0)
    assert r.gain_db(0.0) == -30.0 and r.gain_db(30.0) == -15.0 and r.gain_db(60.0) == 0.0
    assert r.gain_db(600.0) == 0.0
    gains = [r.gain_db(t) for t in range(0, 61)]
    assert np.all(np.diff(gains) >= 0) and set(gains) <= {-3.0 * k for k in range(11)}
    assert r.volume(60.0) == 1.0 and r.volume(0.0) == pytest.approx(10 ** (-1.5))
    assert VolumeRamp(ramp_s=0.0).volume(0.0) == 1.0


def test_simulated_speaker_records_sound_time_and_volume() -> None:
    clock = VirtualClock(0.0)
    sp = SimulatedSpeaker(clock, sound="birdsong", ramp=VolumeRamp(ramp_s=60.0))
    for t in (1000.0, 1004.0, 1032.0, 1060.0, 1100.0):
        sp.play(t)
    sp.stop()
    sp.play(2000.0)  # a new ring starts quiet again
    vols = [p.volume for p in sp.played]
    assert [p.t_s for p in sp.played] == [1000.0, 1004.0, 1032.0, 1060.0, 1100.0, 2000.0]
    assert {p.sound for p in sp.played} == {"birdsong"}
    assert vols[0] == pytest.approx(10 ** (-1.5)) and vols[3] == vols[4] == 1.0
    assert np.all(np.diff(vols[:5]) >= 0) and vols[5] == vols[0]
    assert sp.plays == [1000.0, 1004.0, 1032.0, 1060.0, 1100.0, 2000.0]  # old API intact


def test_scale_wav_scales_samples(tmp_path: Path) -> None:
    src = sound_path("chimes")
    out = scale_wav(src, tmp_path / "q.wav", -6.0)
    assert _peak(out) == pytest.approx(_peak(src) * 10 ** (-6 / 20), abs=1)


def test_aplay_plays_louder_copies_along_the_ramp(aplay_present: None, tmp_path: Path) -> None:
    popen = FakePopen()
    sp = AplaySpeaker(cache_dir=tmp_path, popen=popen, ramp=VolumeRamp(ramp_s=60.0))
    for i, t in enumerate((0.0, 30.0, 60.0)):
        sp.play(t)
        popen.procs[i].returncode = 0  # finished: the next play starts a new aplay
    peaks = [_peak(Path(p.args[-1])) for p in popen.procs]
    full = _peak(sound_path("chimes"))
    assert peaks[0] == pytest.approx(full * 10 ** (-30 / 20), abs=1)
    assert peaks[1] == pytest.approx(full * 10 ** (-15 / 20), abs=1)
    assert Path(popen.procs[2].args[-1]) == sound_path("chimes")  # full scale: the original
    sp.stop()
    sp.play(100.0)
    assert popen.procs[3].args[-1] == popen.procs[0].args[-1]  # the next ring starts quiet


def test_device_check_plays_silence_and_reports_failure(
    aplay_present: None, tmp_path: Path
) -> None:
    run = FakeRun()
    sp = AplaySpeaker("plughw:CARD=Headphones", cache_dir=tmp_path, run=run)
    res = sp.check()
    assert res.ok and res.name == "aplay plughw:CARD=Headphones"
    cmd = run.calls[0]
    assert cmd[:4] == ["aplay", "-q", "-D", "plughw:CARD=Headphones"]
    with wave.open(cmd[-1], "rb") as w:
        assert w.getnframes() > 0 and not any(w.readframes(w.getnframes()))
    bad = FakeRun(1, b"aplay: main:850: audio open error: No such file or directory\n")
    res = AplaySpeaker("hw:9", cache_dir=tmp_path, run=bad).check()
    assert not res.ok and "No such file or directory" in res.detail


def test_device_check_without_aplay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    res = check_speaker(AplaySpeaker(run=FakeRun()))
    assert not res.ok and "aplay not found" in res.detail


def test_fallback_on_play_failure_is_reported_and_primary_retried_next_ring() -> None:
    primary = SimulatedSpeaker(fail_plays=1)
    second = SimulatedSpeaker()
    switches: list[tuple[str, str, str]] = []
    chain = FallbackSpeaker([primary, second], on_fallback=lambda *a: switches.append(a))
    assert isinstance(chain, Speaker)
    chain.play(10.0)
    chain.play(14.0)
    assert primary.plays == [] and second.plays == [10.0, 14.0]
    assert len(switches) == 1 and "simulated speaker failure" in switches[0][2]
    assert chain.failures[0][1] == "simulated speaker failure"
    chain.stop()
    assert second.events[-1][1] == "stop"
    chain.play(100.0)  # the next ring tries the primary again
    assert primary.plays == [100.0]


def test_fallback_all_failing_raises_one_hardware_error() -> None:
    chain = FallbackSpeaker([SimulatedSpeaker(fail_plays=5), SimulatedSpeaker(fail_plays=5)])
    with pytest.raises(HardwareError, match="every speaker output failed"):
        chain.play(0.0)
    assert len(chain.failures) == 2


def test_fallback_check_picks_the_first_working_output() -> None:
    a = SimulatedSpeaker(fail_checks=True)
    b = SimulatedSpeaker()
    chain = FallbackSpeaker([a, b])
    res = chain.check()
    assert res.ok and "simulated device missing" in res.detail
    chain.play(5.0)
    assert b.plays == [5.0] and a.plays == []
    assert not FallbackSpeaker([SimulatedSpeaker(fail_checks=True)]).check().ok


def test_alsa_to_alsa_to_buzzer_chain(aplay_present: None, tmp_path: Path, factory: Any) -> None:
    def broken(args: list[str], **kwargs: Any) -> FakeProc:
        raise OSError(19, "No such device")

    buzzer = BuzzerSpeaker(13, pin_factory=factory, on_s=10.0, off_s=10.0)
    chain = FallbackSpeaker(
        [
            AplaySpeaker("hw:0", cache_dir=tmp_path, popen=broken),
            AplaySpeaker("hw:1", cache_dir=tmp_path, popen=broken),
            buzzer,
        ]
    )
    chain.play(0.0)
    assert chain.name == "buzzer GPIO 13"
    assert [n for n, _ in chain.failures] == ["aplay hw:0", "aplay hw:1"]
    pin = factory.pin(13)
    # the beep thread drives the pin high at once (its first on-time is 10 s)
    for _ in range(1000):
        if pin.state:
            break
        time.sleep(0.005)
    assert pin.state
    chain.stop()
    assert not pin.state
    buzzer.close()


def test_speaker_from_config() -> None:
    cfg = parse_config(
        {
            "speaker": {
                "device": "hw:0",
                "fallback_device": "hw:1",
                "buzzer_pin": 13,
                "volume_ramp_s": 90.0,
                "sound": "bowl",
            }
        }
    ).speaker
    sim = speaker_from_config(cfg, simulated=True)
    assert isinstance(sim, SimulatedSpeaker) and sim.sound == "bowl"
    chain = speaker_from_config(cfg, simulated=False)
    assert isinstance(chain, FallbackSpeaker)
    assert chain.name == "aplay hw:0"
    with pytest.raises(Exception, match="fallback_device"):
        parse_config({"speaker": {"device": "hw:0", "fallback_device": "hw:0"}})


def test_an_alarms_sound_is_chosen_on_every_output(aplay_present: None, tmp_path: Path) -> None:
    popen = FakePopen()
    primary = AplaySpeaker(cache_dir=tmp_path, popen=popen, sound="bowl")
    twin = SimulatedSpeaker(sound="bowl")
    chain = FallbackSpeaker([primary, twin, BuzzerSpeaker(17, pin_factory=MockFactory())])
    chain.set_sound("birdsong")
    chain.play(0.0)
    assert Path(popen.procs[0].args[-1]) == sound_path("birdsong") and twin.sound == "birdsong"
    chain.stop()
    chain.set_sound("")  # the next alarm has none of its own: the configured sound again
    chain.play(10.0)
    assert Path(popen.procs[1].args[-1]) == sound_path("bowl") and twin.sound == "bowl"
    with pytest.raises(ValueError, match="unknown sound"):
        chain.set_sound("klaxon")
