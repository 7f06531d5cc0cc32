"""The alarm's speaker: an interface, a recording twin, ALSA, a buzzer and a fallback chain.

The alarm task owns the rhythm: it calls `Speaker.play` when the alarm rings and again every few
seconds while it keeps ringing, and `Speaker.stop` when it is dismissed or gives up. A speaker
only has to start its sound without blocking the caller.

The volume ramp needs no new call: the first `play` after a `stop` (or after construction) starts
a ring, and each later `play` is louder by `VolumeRamp.gain_db(t_s - ring start)`, from -30 dB to
full scale over `ramp_s` seconds, even in decibels (loudness follows level in dB far better than
amplitude). `AplaySpeaker` plays a copy of the WAV scaled to the ramp's step (3-dB steps, cached),
so the system mixer is never touched.

`check()` (on every speaker here; `check_speaker` for any `Speaker`) says whether the speaker
can play now: `AplaySpeaker` plays 50 ms of silence on its device, which opens the device as a
real ring would. It blocks for up to a few seconds: call it from a thread
(`asyncio.to_thread`), when an alarm is armed and a minute before it rings.

`FallbackSpeaker` chains outputs (primary ALSA device -> second ALSA device -> GPIO buzzer):
a `play` that fails on one output moves to the next at once, and the switch is reported (log and
`on_fallback`); a `stop` ends the ring and the next ring tries the primary again.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import struct
import subprocess
import tempfile
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from appliance.errors import HardwareError
from hardware.sounds import DEFAULT_SOUND, sound_path

if TYPE_CHECKING:
    from appliance.config import SpeakerConfig

__all__ = [
    "CHIME_FILENAME",
    "AplaySpeaker",
    "BuzzerSpeaker",
    "FallbackSpeaker",
    "Played",
    "SimulatedSpeaker",
    "Speaker",
    "SpeakerCheck",
    "VolumeRamp",
    "check_speaker",
    "default_cache_dir",
    "scale_wav",
    "speaker_from_config",
    "write_chime_wav",
]

log = logging.getLogger(__name__)

CHIME_FILENAME = "chime-v1.wav"
"""Name of the synthesized chime in the cache directory (bump the suffix when the sound changes)."""


@runtime_checkable
class Speaker(Protocol):
    """Something that can sound the alarm."""

    def play(self, t_s: float) -> None:
        """Start the alarm sound now, without blocking.

        If the previous sound is still playing, a driver may let it finish instead of overlapping.

        Args:
            t_s: Time of the request, UTC epoch seconds (for logs and twins).

        Raises:
            HardwareError: the sound could not be started.
        """
        ...

    def stop(self) -> None:
        """Silence the speaker (no-op if it is silent).

        Raises:
            HardwareError: the sound could not be stopped.
        """
        ...

    def available(self) -> bool:
        """Return True if the speaker looks usable (its player and device are present)."""
        ...


@dataclass(frozen=True, slots=True)
class SpeakerCheck:
    """The result of a device check.

    Attributes:
        ok: True if the speaker can play now.
        name: Which output ("aplay default", "buzzer GPIO 13", ...).
        detail: Why not (or what answered), one line.
    """

    ok: bool
    name: str
    detail: str = ""


def check_speaker(speaker: Speaker) -> SpeakerCheck:
    """Check any speaker: its own `check()` if it has one, else `available()`. Never raises."""
    check = getattr(speaker, "check", None)
    try:
        if callable(check):
            result = check()
            if isinstance(result, SpeakerCheck):
                return result
        ok = speaker.available()
    except Exception as e:  # a broken driver is a failed check, not a crash
        return SpeakerCheck(False, type(speaker).__name__, str(e))
    return SpeakerCheck(ok, type(speaker).__name__, "" if ok else "not available")


@dataclass(frozen=True, slots=True)
class VolumeRamp:
    """A volume that rises from `start_db` to 0 dB (full scale) over `ramp_s`, even in dB.

    Attributes:
        ramp_s: Length of the ramp, seconds (0: full volume at once).
        start_db: Gain at the ring's start, dB re full scale (< 0).
        step_db: Gains are rounded to this step (`AplaySpeaker` caches one file per step), dB.
    """

    ramp_s: float = 60.0
    start_db: float = -30.0
    step_db: float = 3.0

    def gain_db(self, elapsed_s: float) -> float:
        """Gain `elapsed_s` seconds into the ring, dB (≤ 0), rounded to `step_db`."""
        if self.ramp_s <= 0.0:
            return 0.0
        frac = min(1.0, max(0.0, elapsed_s / self.ramp_s))
        db = self.start_db * (1.0 - frac)
        return round(db / self.step_db) * self.step_db if self.step_db > 0 else db

    def volume(self, elapsed_s: float) -> float:
        """Amplitude factor `elapsed_s` seconds into the ring, 0–1."""
        return float(10.0 ** (self.gain_db(elapsed_s) / 20.0))


class _RingTimer:
    """When the current ring started: the first play after a stop."""

    def __init__(self) -> None:
        self.start_s: float | None = None

    def elapsed(self, t_s: float) -> float:
        if self.start_s is None:
            self.start_s = t_s
        return t_s - self.start_s

    def reset(self) -> None:
        self.start_s = None


@dataclass(frozen=True, slots=True)
class Played:
    """One sound the simulated speaker played.

    Attributes:
        t_s: When, UTC epoch seconds.
        sound: Name of the sound.
        volume: Amplitude factor, 0–1.
    """

    t_s: float
    sound: str
    volume: float


class _HasNow(Protocol):
    def now(self) -> float: ...


def _chosen_sound(name: str, configured: str) -> str:
    """The shipped sound to play for an alarm's `name` ("" = `configured`).

    Raises:
        ValueError: `name` is not a shipped sound.
    """
    if name:
        sound_path(name)  # raises for a sound that is not shipped
    return name or configured


class SimulatedSpeaker:
    """The twin used by tests and the simulator: it records what it was asked to do.

    Args:
        clock: Anything with `now() -> float` (UTC epoch seconds), used to time-stamp `stop`
            calls, which carry no time; without it they are stamped NaN.
        fail_plays: How many of the next `play` calls raise `HardwareError` (fault injection);
            a failed call is not recorded.
        sound: Name of the sound it pretends to play.
        ramp: The volume ramp; None means full volume at once.
        fail_checks: If True, `check()` fails (a missing device).

    Attributes:
        events: Every successful call in order, as (t_s, "play" | "stop"), t_s in UTC epoch s.
        played: Every successful play with its sound and volume.
        fail_plays: Remaining `play` calls that will fail.
        fail_checks: Whether `check()` fails.
    """

    def __init__(
        self,
        clock: _HasNow | None = None,
        *,
        fail_plays: int = 0,
        sound: str = DEFAULT_SOUND,
        ramp: VolumeRamp | None = None,
        fail_checks: bool = False,
    ) -> None:
        self._clock = clock
        self.fail_plays = fail_plays
        self.fail_checks = fail_checks
        self.sound = sound
        self._configured_sound = sound
        self._ramp = ramp or VolumeRamp(ramp_s=0.0)
        self._ring = _RingTimer()
        self.events: list[tuple[float, str]] = []
        self.played: list[Played] = []
        self._playing = False

    @property
    def playing(self) -> bool:
        """True between a `play` and the next `stop`."""
        return self._playing

    @property
    def plays(self) -> list[float]:
        """Times of the successful `play` calls, UTC epoch seconds."""
        return [t for t, what in self.events if what == "play"]

    def set_sound(self, name: str) -> None:
        """Pretend to play the shipped sound `name` from now on; "" = the one it was built with.

        Raises:
            ValueError: `name` is not a shipped sound.
        """
        self.sound = _chosen_sound(name, self._configured_sound)

    def play(self, t_s: float) -> None:
        """Record a play at `t_s` (UTC epoch s), or raise `HardwareError` if a failure is due."""
        if self.fail_plays > 0:
            self.fail_plays -= 1
            raise HardwareError("simulated speaker failure")
        self.events.append((t_s, "play"))
        self.played.append(Played(t_s, self.sound, self._ramp.volume(self._ring.elapsed(t_s))))
        self._playing = True

    def stop(self) -> None:
        """Record a stop, stamped with the clock's time (NaN without a clock)."""
        t_s = self._clock.now() if self._clock is not None else math.nan
        self.events.append((t_s, "stop"))
        self._playing = False
        self._ring.reset()

    def available(self) -> bool:
        """Return True: the twin is always available."""
        return True

    def check(self) -> SpeakerCheck:
        """Pass, unless `fail_checks` is set."""
        if self.fail_checks:
            return SpeakerCheck(False, "simulated speaker", "simulated device missing")
        return SpeakerCheck(True, "simulated speaker")


class _Process(Protocol):
    """The part of `subprocess.Popen` the driver uses."""

    @property
    def returncode(self) -> int | None: ...

    @property
    def stderr(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


PopenFactory = Callable[..., _Process]
"""Signature of `subprocess.Popen`: `(args: Sequence[str], **kwargs) -> process`."""

RunFactory = Callable[..., "subprocess.CompletedProcess[bytes]"]
"""Signature of `subprocess.run`, used by the device check."""


def default_cache_dir() -> Path:
    """Return where generated sounds are cached.

    systemd's `$CACHE_DIRECTORY` (set by `CacheDirectory=` in the unit) if present, else
    `$XDG_CACHE_HOME/appliance`, else `~/.cache/appliance`.
    """
    if os.environ.get("CACHE_DIRECTORY"):
        return Path(os.environ["CACHE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "appliance"


def write_chime_wav(
    path: Path,
    *,
    duration_s: float = 2.0,
    rate_hz: int = 16000,
    amplitude: float = 0.35,
) -> Path:
    """Synthesize a gentle chime (a decaying A5 with a soft fifth) as a mono 16-bit WAV.

    The file is written to a temporary name and renamed, so a reader never sees half a file.
    At the defaults it is 2 s, 16 kHz, ≈ 64 kB.

    Args:
        path: Destination file; its directory is created if needed.
        duration_s: Length, seconds, > 0.
        rate_hz: Sample rate, Hz (8000 to 48000).
        amplitude: Peak amplitude as a fraction of full scale, (0, 1].

    Returns:
        `path`.

    Raises:
        OSError: the file could not be written.
    """
    n = max(1, round(duration_s * rate_hz))
    attack_s = 0.02
    frames = bytearray()
    for i in range(n):
        t = i / rate_hz
        envelope = min(1.0, t / attack_s) * math.exp(-2.2 * t)
        tail = min(1.0, (n - 1 - i) / (attack_s * rate_hz))  # no click at the end
        s = 0.75 * math.sin(2 * math.pi * 880.0 * t) + 0.25 * math.sin(2 * math.pi * 1320.0 * t)
        frames += struct.pack("<h", int(32767 * amplitude * envelope * tail * s))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".chime-", suffix=".wav", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate_hz)
            w.writeframes(bytes(frames))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def scale_wav(src: Path, dest: Path, gain_db: float) -> Path:
    """Write a copy of the 16-bit PCM WAV `src` with its samples scaled by `gain_db`.

    Written to a temporary name and renamed, so a reader never sees half a file.

    Args:
        src: A 16-bit PCM WAV (any rate and channel count).
        dest: Destination; its directory is created if needed.
        gain_db: Gain, dB (≤ 0 keeps every sample in range; above 0 clips).

    Returns:
        `dest`.

    Raises:
        OSError: a file could not be read or written.
        HardwareError: `src` is not 16-bit PCM.
    """
    try:
        with wave.open(str(src), "rb") as r:
            params = r.getparams()
            data = r.readframes(params.nframes)
    except wave.Error as e:
        raise HardwareError(f"{src}: not a PCM WAV ({e})") from e
    if params.sampwidth != 2:
        raise HardwareError(f"{src}: {8 * params.sampwidth}-bit samples, need 16-bit")
    pcm = np.frombuffer(data, dtype="<i2").astype(np.float64) * 10.0 ** (gain_db / 20.0)
    out = np.clip(np.rint(pcm), -32768, 32767).astype("<i2").tobytes()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".sound-", suffix=".wav", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f, wave.open(f, "wb") as w:
            w.setparams(params)
            w.writeframes(out)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def _write_silence(dest: Path, duration_s: float = 0.05, rate_hz: int = 22050) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".silence-", suffix=".wav", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f, wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate_hz)
            w.writeframes(bytes(2 * round(duration_s * rate_hz)))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


class AplaySpeaker:
    """The real speaker: plays a WAV through ALSA with `aplay -q -D <device> <file>`.

    `play` starts `aplay` as a subprocess and returns at once. If the previous `aplay` is still
    playing, `play` lets it finish; if it exited with an error, `play` raises that error (with
    aplay's message) once, and the next call tries again. With a volume ramp, each `play` plays
    the sound scaled to the ramp's current step (a copy cached per step in `cache_dir`).

    Args:
        device: ALSA PCM name (`aplay -L`), e.g. "default", "plughw:CARD=Headphones" or an HDMI or
            USB card on a Pi 5, which has no jack.
        wav_path: The sound to play; None plays the shipped sound `sound`.
        cache_dir: Where scaled copies and the check's silence go; None means
            `default_cache_dir()` (the temporary directory if that is not writable).
        popen: Process factory with `subprocess.Popen`'s signature (injected by tests).
        sound: Name of a shipped sound (`hardware.sounds.SOUNDS`), used when `wav_path` is None.
        ramp: The volume ramp; None plays at full volume from the first play.
        run: `subprocess.run`'s signature, for the device check (injected by tests).
    """

    def __init__(
        self,
        device: str = "default",
        wav_path: Path | None = None,
        *,
        cache_dir: Path | None = None,
        popen: PopenFactory | None = None,
        sound: str = DEFAULT_SOUND,
        ramp: VolumeRamp | None = None,
        run: RunFactory | None = None,
    ) -> None:
        self.device = device
        self._wav_path = wav_path
        self._sound = sound
        self._configured_sound = sound
        self._cache_dir = cache_dir
        self._popen: PopenFactory = popen if popen is not None else subprocess.Popen
        self._run: RunFactory = run if run is not None else subprocess.run
        self._ramp = ramp or VolumeRamp(ramp_s=0.0)
        self._ring = _RingTimer()
        self._proc: _Process | None = None

    @property
    def name(self) -> str:
        """The output's name in logs and reports."""
        return f"aplay {self.device}"

    def available(self) -> bool:
        """Return True if `aplay` is on the PATH."""
        return shutil.which("aplay") is not None

    def set_sound(self, name: str) -> None:
        """Play the shipped sound `name` from the next play on; "" = the one it was built with.

        A speaker given its own `wav_path` keeps playing that file.

        Raises:
            ValueError: `name` is not a shipped sound.
        """
        self._sound = _chosen_sound(name, self._configured_sound)

    def wav_file(self) -> Path:
        """Return the WAV to play at full volume.

        Raises:
            HardwareError: the file is missing.
        """
        path = self._wav_path if self._wav_path is not None else sound_path(self._sound)
        if not path.is_file():
            raise HardwareError(f"alarm sound {path} not found")
        return path

    def _cached(self, name: str, make: Callable[[Path], Path]) -> Path:
        """A file in the cache directory (or the temporary one), made on first use."""
        dirs = [self._cache_dir or default_cache_dir(), Path(tempfile.gettempdir()) / "appliance"]
        last: OSError | None = None
        for d in dirs:
            path = d / name
            if path.is_file():
                return path
            try:
                return make(path)
            except OSError as e:
                log.warning("cannot write sound cache path=%s err=%s", path, e)
                last = e
        raise HardwareError(f"cannot write {name}: {last}")

    def wav_at(self, gain_db: float) -> Path:
        """Return the WAV to play at `gain_db` (the original at 0 dB, else a cached copy).

        Raises:
            HardwareError: the sound is missing or no copy can be written.
        """
        src = self.wav_file()
        if gain_db >= 0.0:
            return src
        st = src.stat()
        # Keyed on the source's size and mtime: a replaced sound never plays a stale copy.
        name = f"{src.stem}-{st.st_size}-{int(st.st_mtime)}-{-gain_db:04.1f}dB.wav"
        return self._cached(name, lambda p: scale_wav(src, p, gain_db))

    def command(self, wav: Path) -> list[str]:
        """Return the command line that plays `wav`."""
        return ["aplay", "-q", "-D", self.device, str(wav)]

    def play(self, t_s: float) -> None:
        """Start `aplay` unless the previous sound is still playing.

        Args:
            t_s: Time of the request, UTC epoch seconds (the ramp's clock).

        Raises:
            HardwareError: `aplay` is missing or cannot be started, the sound file cannot be
                made, or the previous `aplay` failed (its stderr is in the message).
        """
        self._check_previous()
        if self._proc is not None:
            return  # still playing: do not overlap
        if not self.available():
            raise HardwareError("aplay not found on PATH (install alsa-utils)")
        gain_db = self._ramp.gain_db(self._ring.elapsed(t_s))
        cmd = self.command(self.wav_at(gain_db))
        try:
            self._proc = self._popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except (OSError, ValueError) as e:
            raise HardwareError(f"cannot start {cmd[0]}: {e}") from e
        log.debug("speaker play t_s=%.1f gain_db=%.0f cmd=%s", t_s, gain_db, cmd)

    def stop(self) -> None:
        """Terminate a running `aplay` (killed if it has not ended 0.5 s later); end the ring.

        Raises:
            HardwareError: the process could not be signalled.
        """
        self._ring.reset()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.terminate()
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=0.5)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise HardwareError(f"cannot stop aplay: {e}") from e

    def check(self, timeout_s: float = 5.0) -> SpeakerCheck:
        """Play 50 ms of silence on the device: does it open? Blocks up to `timeout_s`.

        While a sound is playing, the check passes without touching the device (a hardware
        PCM can only be opened once). Never raises.
        """
        if self._proc is not None and self._proc.poll() is None:
            return SpeakerCheck(True, self.name, "playing")
        if not self.available():
            return SpeakerCheck(False, self.name, "aplay not found on PATH (install alsa-utils)")
        try:
            self.wav_file()
            silence = self._cached("silence-50ms.wav", _write_silence)
            res = self._run(
                self.command(silence),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return SpeakerCheck(False, self.name, f"aplay hung for {timeout_s:g} s")
        except (OSError, ValueError) as e:
            return SpeakerCheck(False, self.name, str(e))
        if res.returncode != 0:
            msg = (res.stderr or b"").decode("utf-8", "replace").strip().splitlines()
            return SpeakerCheck(
                False, self.name, f"aplay exited with {res.returncode}: {msg[-1] if msg else ''}"
            )
        return SpeakerCheck(True, self.name, "device opened")

    def _check_previous(self) -> None:
        """Forget a finished `aplay`; raise if it failed."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return
        self._proc = None
        if proc.returncode:
            msg = ""
            if proc.stderr is not None:
                try:
                    msg = proc.stderr.read().decode("utf-8", "replace").strip()
                except (OSError, ValueError):
                    msg = ""
                finally:
                    proc.stderr.close()
            raise HardwareError(f"aplay exited with {proc.returncode}: {msg or 'no message'}")
        if proc.stderr is not None:
            proc.stderr.close()


class BuzzerSpeaker:
    """The last resort: an active piezo buzzer on a GPIO pin (gpiozero `Buzzer`), beeping.

    It has one loudness, so there is no volume ramp; it beeps `on_s`/`off_s` in gpiozero's
    background thread from `play` until `stop`. gpiozero is imported when the buzzer is first
    used.

    Args:
        pin: BCM pin number of the buzzer (driven high = sounding).
        pin_factory: gpiozero pin factory (tests pass a `MockFactory`); None = gpiozero's default.
        on_s: Beep length, seconds.
        off_s: Pause between beeps, seconds.
    """

    def __init__(
        self, pin: int, *, pin_factory: Any = None, on_s: float = 0.15, off_s: float = 0.35
    ) -> None:
        self.pin = pin
        self._factory = pin_factory
        self._on_s = on_s
        self._off_s = off_s
        self._buzzer: Any = None
        self._beeping = False

    @property
    def name(self) -> str:
        """The output's name in logs and reports."""
        return f"buzzer GPIO {self.pin}"

    def _device(self) -> Any:
        if self._buzzer is None:
            try:
                from gpiozero import Buzzer

                self._buzzer = Buzzer(self.pin, pin_factory=self._factory)
            except ImportError as e:
                raise HardwareError("gpiozero is not installed (pip install '.[pi]')") from e
            except Exception as e:  # gpiozero's errors have no common base with OSError
                raise HardwareError(f"buzzer on GPIO {self.pin}: {e}") from e
        return self._buzzer

    def available(self) -> bool:
        """Return True if the buzzer's pin can be claimed."""
        return self.check().ok

    def check(self) -> SpeakerCheck:
        """Claim the pin (no sound). Never raises."""
        try:
            self._device()
        except HardwareError as e:
            return SpeakerCheck(False, self.name, str(e))
        return SpeakerCheck(True, self.name, "pin claimed")

    def play(self, t_s: float) -> None:
        """Start beeping (a no-op while beeping).

        Raises:
            HardwareError: the pin cannot be used.
        """
        if self._beeping:
            return
        dev = self._device()
        try:
            dev.beep(on_time=self._on_s, off_time=self._off_s, background=True)
        except Exception as e:
            raise HardwareError(f"buzzer on GPIO {self.pin}: {e}") from e
        self._beeping = True
        log.debug("buzzer play t_s=%.1f", t_s)

    def stop(self) -> None:
        """Stop beeping.

        Raises:
            HardwareError: the pin cannot be driven.
        """
        self._beeping = False
        if self._buzzer is None:
            return
        try:
            self._buzzer.off()
        except Exception as e:
            raise HardwareError(f"buzzer on GPIO {self.pin}: {e}") from e

    def close(self) -> None:
        """Release the pin."""
        if self._buzzer is not None:
            self._buzzer.close()
            self._buzzer = None


def _output_name(speaker: Speaker) -> str:
    name = getattr(speaker, "name", None)
    return name if isinstance(name, str) else type(speaker).__name__


class FallbackSpeaker:
    """Outputs in order of preference; a failing one hands the ring to the next.

    `play` plays on the active output; if it raises, the next output becomes active and is played
    at once, and the switch is logged and passed to `on_fallback(failed, next, error)`. If every
    output fails, `play` raises `HardwareError` naming them all (the alarm retries a tick later,
    from the primary again). `stop` silences every output used and makes the primary active again
    for the next ring.

    Args:
        outputs: The speakers, primary first (at least one).
        on_fallback: Told of each switch: (name of the failed output, name of the next, error);
            its exceptions are logged and swallowed.

    Attributes:
        failures: Every failure seen, as (output name, error message), oldest first.
    """

    def __init__(
        self,
        outputs: Sequence[Speaker],
        on_fallback: Callable[[str, str, str], None] | None = None,
    ) -> None:
        if not outputs:
            raise ValueError("FallbackSpeaker needs at least one output")
        self._outputs = list(outputs)
        self._on_fallback = on_fallback
        self._active = 0
        self._used: set[int] = set()
        self.failures: list[tuple[str, str]] = []

    @property
    def active(self) -> Speaker:
        """The output that plays the next sound."""
        return self._outputs[self._active]

    @property
    def name(self) -> str:
        """The active output's name."""
        return _output_name(self.active)

    def available(self) -> bool:
        """Return True if any output is available."""
        return any(o.available() for o in self._outputs)

    def set_sound(self, name: str) -> None:
        """Choose the sound on every output that can play one ("" = each one's configured).

        Raises:
            ValueError: `name` is not a shipped sound.
        """
        for out in self._outputs:
            choose = getattr(out, "set_sound", None)
            if callable(choose):
                choose(name)

    def check(self) -> SpeakerCheck:
        """Check the outputs in order and make the first that passes active. Never raises.

        Returns:
            The passing output's check (its detail lists the outputs that failed before it), or
            a failed check naming every output.
        """
        failed: list[str] = []
        for i, out in enumerate(self._outputs):
            res = check_speaker(out)
            if res.ok:
                if i != self._active:
                    log.warning("speaker check: using %s (%s)", res.name, "; ".join(failed))
                self._active = i
                detail = res.detail if not failed else f"{res.detail}; failed: {'; '.join(failed)}"
                return SpeakerCheck(True, res.name, detail)
            failed.append(f"{res.name}: {res.detail}")
            self.failures.append((res.name, res.detail))
        return SpeakerCheck(False, self.name, "; ".join(failed))

    def play(self, t_s: float) -> None:
        """Play on the active output, falling back along the chain on failure.

        Raises:
            HardwareError: every output failed.
        """
        errors: list[str] = []
        for _ in range(len(self._outputs)):
            out = self._outputs[self._active]
            try:
                out.play(t_s)
            except Exception as e:
                name = _output_name(out)
                errors.append(f"{name}: {e}")
                self.failures.append((name, str(e)))
                nxt = (self._active + 1) % len(self._outputs)
                if nxt == 0 or len(self._outputs) == 1:
                    break
                self._active = nxt
                self._report(name, _output_name(self._outputs[nxt]), str(e))
                continue
            self._used.add(self._active)
            return
        self._active = 0
        raise HardwareError("every speaker output failed: " + "; ".join(errors))

    def stop(self) -> None:
        """Silence every output used in this ring; the primary is tried first next time.

        Raises:
            HardwareError: an output could not be stopped (the others still are).
        """
        errors: list[str] = []
        for i in sorted(self._used | {self._active}):
            try:
                self._outputs[i].stop()
            except Exception as e:
                errors.append(f"{_output_name(self._outputs[i])}: {e}")
        self._used.clear()
        self._active = 0
        if errors:
            raise HardwareError("cannot stop " + "; ".join(errors))

    def _report(self, failed: str, nxt: str, error: str) -> None:
        log.error("speaker %s failed (%s); falling back to %s", failed, error, nxt)
        if self._on_fallback is not None:
            try:
                self._on_fallback(failed, nxt, error)
            except Exception:
                log.exception("on_fallback callback failed")


def speaker_from_config(
    cfg: SpeakerConfig,
    *,
    simulated: bool,
    clock: _HasNow | None = None,
    on_fallback: Callable[[str, str, str], None] | None = None,
    pin_factory: Any = None,
) -> Speaker:
    """Build the configured speaker chain.

    Args:
        cfg: The `[speaker]` section.
        simulated: True off the Pi: a `SimulatedSpeaker` with the configured sound and ramp.
        clock: The simulated speaker's clock (stamps its stops).
        on_fallback: Passed to `FallbackSpeaker`.
        pin_factory: gpiozero pin factory of the buzzer (tests).

    Returns:
        `SimulatedSpeaker`, or `FallbackSpeaker` of `AplaySpeaker(device)`, then
        `AplaySpeaker(fallback_device)` if set, then `BuzzerSpeaker(buzzer_pin)` if ≥ 0.
    """
    ramp = VolumeRamp(ramp_s=cfg.volume_ramp_s)
    if simulated:
        return SimulatedSpeaker(clock, sound=cfg.sound, ramp=ramp)
    outputs: list[Speaker] = [AplaySpeaker(cfg.device, sound=cfg.sound, ramp=ramp)]
    if cfg.fallback_device:
        outputs.append(AplaySpeaker(cfg.fallback_device, sound=cfg.sound, ramp=ramp))
    if cfg.buzzer_pin >= 0:
        outputs.append(BuzzerSpeaker(cfg.buzzer_pin, pin_factory=pin_factory))
    return FallbackSpeaker(outputs, on_fallback)
