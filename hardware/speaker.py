"""The alarm's speaker: an interface, a recording twin and the ALSA driver (`aplay`).

The alarm task owns the rhythm: it calls `Speaker.play` when the alarm rings and again every few
seconds while it keeps ringing, and `Speaker.stop` when it is dismissed or gives up. A speaker
only has to start its sound without blocking the caller.
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
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from appliance.errors import HardwareError

__all__ = [
    "CHIME_FILENAME",
    "AplaySpeaker",
    "SimulatedSpeaker",
    "Speaker",
    "default_cache_dir",
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


class _HasNow(Protocol):
    def now(self) -> float: ...


class SimulatedSpeaker:
    """The twin used by tests and the simulator: it records what it was asked to do.

    Args:
        clock: Anything with `now() -> float` (UTC epoch seconds), used to time-stamp `stop`
            calls, which carry no time; without it they are stamped NaN.
        fail_plays: How many of the next `play` calls raise `HardwareError` (fault injection);
            a failed call is not recorded.

    Attributes:
        events: Every successful call in order, as (t_s, "play" | "stop"), t_s in UTC epoch s.
        fail_plays: Remaining `play` calls that will fail.
    """

    def __init__(self, clock: _HasNow | None = None, *, fail_plays: int = 0) -> None:
        self._clock = clock
        self.fail_plays = fail_plays
        self.events: list[tuple[float, str]] = []
        self._playing = False

    @property
    def playing(self) -> bool:
        """True between a `play` and the next `stop`."""
        return self._playing

    @property
    def plays(self) -> list[float]:
        """Times of the successful `play` calls, UTC epoch seconds."""
        return [t for t, what in self.events if what == "play"]

    def play(self, t_s: float) -> None:
        """Record a play at `t_s` (UTC epoch s), or raise `HardwareError` if a failure is due."""
        if self.fail_plays > 0:
            self.fail_plays -= 1
            raise HardwareError("simulated speaker failure")
        self.events.append((t_s, "play"))
        self._playing = True

    def stop(self) -> None:
        """Record a stop, stamped with the clock's time (NaN without a clock)."""
        t_s = self._clock.now() if self._clock is not None else math.nan
        self.events.append((t_s, "stop"))
        self._playing = False

    def available(self) -> bool:
        """Return True: the twin is always available."""
        return True


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


class AplaySpeaker:
    """The real speaker: plays a WAV through ALSA with `aplay -q -D <device> <file>`.

    `play` starts `aplay` as a subprocess and returns at once. If the previous `aplay` is still
    playing, `play` lets it finish; if it exited with an error, `play` raises that error (with
    aplay's message) once, and the next call tries again.

    Args:
        device: ALSA PCM name (`aplay -L`), e.g. "default", "plughw:CARD=Headphones" or an HDMI or
            USB card on a Pi 5, which has no jack.
        wav_path: The sound to play; None synthesizes the chime (`write_chime_wav`) into
            `cache_dir` at first use.
        cache_dir: Where the chime is cached; None means `default_cache_dir()`.
        popen: Process factory with `subprocess.Popen`'s signature (injected by tests).
    """

    def __init__(
        self,
        device: str = "default",
        wav_path: Path | None = None,
        *,
        cache_dir: Path | None = None,
        popen: PopenFactory | None = None,
    ) -> None:
        self.device = device
        self._wav_path = wav_path
        self._cache_dir = cache_dir
        self._popen: PopenFactory = popen if popen is not None else subprocess.Popen
        self._proc: _Process | None = None

    def available(self) -> bool:
        """Return True if `aplay` is on the PATH."""
        return shutil.which("aplay") is not None

    def wav_file(self) -> Path:
        """Return the WAV to play, synthesizing the chime on first use.

        Falls back to the temporary directory if the cache directory is not writable.

        Raises:
            HardwareError: no sound file can be found or written.
        """
        if self._wav_path is not None:
            if not self._wav_path.is_file():
                raise HardwareError(f"alarm sound {self._wav_path} not found")
            return self._wav_path
        dirs = [self._cache_dir or default_cache_dir(), Path(tempfile.gettempdir()) / "appliance"]
        last: OSError | None = None
        for d in dirs:
            path = d / CHIME_FILENAME
            if path.is_file():
                self._wav_path = path
                return path
            try:
                self._wav_path = write_chime_wav(path)
                log.info("synthesized alarm chime path=%s", path)
                return path
            except OSError as e:
                log.warning("cannot write alarm chime path=%s err=%s", path, e)
                last = e
        raise HardwareError(f"cannot write the alarm chime: {last}")

    def command(self, wav: Path) -> list[str]:
        """Return the command line that plays `wav`."""
        return ["aplay", "-q", "-D", self.device, str(wav)]

    def play(self, t_s: float) -> None:
        """Start `aplay` unless the previous sound is still playing.

        Args:
            t_s: Time of the request, UTC epoch seconds (logged only).

        Raises:
            HardwareError: `aplay` is missing or cannot be started, the sound file cannot be
                made, or the previous `aplay` failed (its stderr is in the message).
        """
        self._check_previous()
        if self._proc is not None:
            return  # still playing: do not overlap
        if not self.available():
            raise HardwareError("aplay not found on PATH (install alsa-utils)")
        cmd = self.command(self.wav_file())
        try:
            self._proc = self._popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except (OSError, ValueError) as e:
            raise HardwareError(f"cannot start {cmd[0]}: {e}") from e
        log.debug("speaker play t_s=%.1f cmd=%s", t_s, cmd)

    def stop(self) -> None:
        """Terminate a running `aplay` (killed if it has not ended 0.5 s later).

        Raises:
            HardwareError: the process could not be signalled.
        """
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
