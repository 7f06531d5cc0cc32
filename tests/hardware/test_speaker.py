"""Tests of the speaker interface, its recording twin, and the aplay driver's process handling."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

import pytest

from appliance.clock import VirtualClock
from appliance.errors import HardwareError
from hardware.sounds import sound_path
from hardware.speaker import (
    AplaySpeaker,
    SimulatedSpeaker,
    Speaker,
    VolumeRamp,
    default_cache_dir,
    write_chime_wav,
)


class FakeProc:
    """Stands in for a `subprocess.Popen` of aplay."""

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.returncode: int | None = None
        self.stderr: io.BytesIO | None = io.BytesIO(b"")
        self.terminated = False
        self.killed = False
        self.ignore_term = False

    def finish(self, code: int, stderr: bytes = b"") -> None:
        self.returncode = code
        self.stderr = io.BytesIO(stderr)

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.terminated = True
        if not self.ignore_term:
            self.returncode = -15

    def kill(self) -> None:
        self.killed = True
        self.returncode = -9

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return self.returncode


class FakePopen:
    def __init__(self) -> None:
        self.procs: list[FakeProc] = []

    def __call__(self, args: list[str], **kwargs: Any) -> FakeProc:
        p = FakeProc(args, **kwargs)
        self.procs.append(p)
        return p


@pytest.fixture
def aplay_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")


@pytest.fixture
def aplay_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return write_chime_wav(tmp_path / "sound.wav", duration_s=0.1)


def test_all_speakers_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(SimulatedSpeaker(), Speaker)
    assert isinstance(AplaySpeaker(cache_dir=tmp_path), Speaker)


class TestSimulatedSpeaker:
    def test_records_plays_and_stops_with_times(self) -> None:
        clock = VirtualClock(1000.0)
        sp = SimulatedSpeaker(clock)
        assert sp.available()
        sp.play(1000.0)
        sp.play(1004.0)
        clock.advance(3.0)
        assert sp.playing
        sp.stop()
        assert not sp.playing
        assert sp.events == [(1000.0, "play"), (1004.0, "play"), (1003.0, "stop")]
        assert sp.plays == [1000.0, 1004.0]

    def test_stop_without_clock_is_stamped_nan(self) -> None:
        sp = SimulatedSpeaker()
        sp.stop()
        assert len(sp.events) == 1 and math.isnan(sp.events[0][0])

    def test_fault_injection(self) -> None:
        sp = SimulatedSpeaker(fail_plays=2)
        for t in (1.0, 2.0):
            with pytest.raises(HardwareError):
                sp.play(t)
        sp.play(3.0)
        assert sp.events == [(3.0, "play")]
        assert sp.fail_plays == 0


class TestAplaySpeakerAvailability:
    def test_available_when_aplay_on_path(self, aplay_present: None) -> None:
        assert AplaySpeaker().available()

    def test_unavailable_without_aplay(self, aplay_missing: None) -> None:
        assert not AplaySpeaker().available()

    def test_play_without_aplay_raises_and_spawns_nothing(
        self, aplay_missing: None, wav: Path
    ) -> None:
        popen = FakePopen()
        sp = AplaySpeaker(wav_path=wav, popen=popen)
        with pytest.raises(HardwareError, match="aplay not found"):
            sp.play(0.0)
        assert popen.procs == []
        assert issubclass(HardwareError, OSError)


class TestAplaySpeakerProcess:
    def test_command_line(self, aplay_present: None, wav: Path) -> None:
        popen = FakePopen()
        sp = AplaySpeaker("plughw:CARD=Headphones", wav_path=wav, popen=popen)
        sp.play(10.0)
        (proc,) = popen.procs
        assert proc.args == ["aplay", "-q", "-D", "plughw:CARD=Headphones", str(wav)]
        assert proc.kwargs["stdin"] == subprocess.DEVNULL
        assert proc.kwargs["stdout"] == subprocess.DEVNULL
        assert proc.kwargs["stderr"] == subprocess.PIPE
        assert sp.command(wav) == proc.args

    def test_plays_the_shipped_sound_by_default(self, aplay_present: None, tmp_path: Path) -> None:
        popen = FakePopen()
        cache = tmp_path / "cache"
        sp = AplaySpeaker(cache_dir=cache, popen=popen)
        sp.play(0.0)
        played = Path(popen.procs[0].args[-1])
        assert played == sound_path("chimes")
        with wave.open(str(played), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        assert not cache.exists()  # full volume needs no scaled copy

    def test_ramped_copies_fall_back_to_tmp(
        self, aplay_present: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("x")
        monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
        popen = FakePopen()
        AplaySpeaker(cache_dir=blocker, popen=popen, ramp=VolumeRamp(60.0)).play(0.0)
        played = Path(popen.procs[0].args[-1])
        assert played.parent == tmp_path / "tmp" / "appliance" and played.name.endswith("dB.wav")
        assert [p.name for p in played.parent.iterdir()] == [played.name]  # no temp files left

    def test_missing_wav_raises(self, aplay_present: None, tmp_path: Path) -> None:
        sp = AplaySpeaker(wav_path=tmp_path / "nope.wav", popen=FakePopen())
        with pytest.raises(HardwareError, match="not found"):
            sp.play(0.0)

    def test_does_not_overlap_a_running_sound(self, aplay_present: None, wav: Path) -> None:
        popen = FakePopen()
        sp = AplaySpeaker(wav_path=wav, popen=popen)
        sp.play(0.0)
        sp.play(1.0)
        assert len(popen.procs) == 1
        popen.procs[0].finish(0)
        sp.play(4.0)
        assert len(popen.procs) == 2

    def test_failed_aplay_is_reported_once_then_retried(
        self, aplay_present: None, wav: Path
    ) -> None:
        popen = FakePopen()
        sp = AplaySpeaker(wav_path=wav, popen=popen)
        sp.play(0.0)
        popen.procs[0].finish(1, b"aplay: main:831: audio open error: Device or resource busy\n")
        with pytest.raises(HardwareError, match="Device or resource busy"):
            sp.play(1.0)
        sp.play(2.0)
        assert len(popen.procs) == 2

    def test_popen_oserror_becomes_hardware_error(self, aplay_present: None, wav: Path) -> None:
        def broken(args: list[str], **kwargs: Any) -> FakeProc:
            raise PermissionError(13, "Permission denied", args[0])

        with pytest.raises(HardwareError, match="cannot start aplay"):
            AplaySpeaker(wav_path=wav, popen=broken).play(0.0)

    def test_stop_terminates(self, aplay_present: None, wav: Path) -> None:
        popen = FakePopen()
        sp = AplaySpeaker(wav_path=wav, popen=popen)
        sp.stop()  # silent: no-op
        sp.play(0.0)
        sp.stop()
        assert popen.procs[0].terminated and not popen.procs[0].killed
        sp.play(1.0)  # a stopped sound does not count as still playing
        assert len(popen.procs) == 2

    def test_stop_kills_a_stubborn_aplay(self, aplay_present: None, wav: Path) -> None:
        popen = FakePopen()
        sp = AplaySpeaker(wav_path=wav, popen=popen)
        sp.play(0.0)
        popen.procs[0].ignore_term = True
        sp.stop()
        assert popen.procs[0].terminated and popen.procs[0].killed


def test_write_chime_wav(tmp_path: Path) -> None:
    path = write_chime_wav(tmp_path / "sub" / "c.wav", duration_s=0.5, rate_hz=8000, amplitude=0.5)
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() == 4000
        data = w.readframes(w.getnframes())
    samples = [
        int.from_bytes(data[i : i + 2], "little", signed=True) for i in range(0, len(data), 2)
    ]
    peak = max(abs(s) for s in samples)
    assert 0.2 * 32767 < peak <= 0.5 * 32767 + 1
    assert abs(samples[0]) < 100 and abs(samples[-1]) < 100  # faded in and out: no clicks


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CACHE_DIRECTORY", str(tmp_path / "sd"))
    assert default_cache_dir() == tmp_path / "sd"
    monkeypatch.delenv("CACHE_DIRECTORY")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "appliance"
