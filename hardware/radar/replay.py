"""Radar recordings: the documented, stable `.npz` format, its writer and a replaying source.

Format (`numpy.load`, no pickle):

| key | dtype / shape | meaning |
|---|---|---|
| `iq` | complex64 [frames, range points] | sparse IQ, one complex sample per range point |
| `t_s` | float64 [frames] | capture times, UTC epoch seconds (any monotonic origin works) |
| `range_start_m` | float | distance of range point 0, metres |
| `range_step_m` | float | spacing of range points, metres |
| `frame_rate_hz` | float | nominal frame rate, Hz |
| `radar` | str | the part that recorded it ("simulated", "A121", ...) |
| `meta` | str, optional | a JSON object (scene, night, seed, software version, ...) |

Other keys are ignored, so a recording can carry more without breaking a reader. Frames need not
be uniform: a recording at another rate, or with jittered or lost frames, is put on a uniform
grid when it is read (`hardware.radar.resample`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import DataError
from appliance.frames import RadarFrames
from hardware.radar.resample import MAX_GAP_S, uniform_frames
from hardware.radar.source import RadarSource

__all__ = ["RecordingWriter", "ReplayRadar", "record"]

log = logging.getLogger(__name__)

_REQUIRED = ("iq", "t_s", "range_start_m", "range_step_m", "frame_rate_hz", "radar")


class ReplayRadar:
    """A `RadarSource` that plays a recording back as fast as it is read.

    A recording at another frame rate than the DSP's (multiples of 10 Hz), or with jittered or
    missing frames, is played on a uniform grid (`hardware.radar.resample`); `frame_rate_hz` is
    then the grid's rate.

    Args:
        path: The `.npz` recording.

    Raises:
        DataError: the file is missing, not an npz, or not in the documented format.
    """

    def __init__(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in _REQUIRED if k not in z.files]
                if missing:
                    raise DataError(f"{path}: not a radar recording (missing {', '.join(missing)})")
                iq = np.asarray(z["iq"])
                t_s = np.asarray(z["t_s"], np.float64)
                self.range_start_m = float(z["range_start_m"])
                self.range_step_m = float(z["range_step_m"])
                self.frame_rate_hz = float(z["frame_rate_hz"])
                self.radar = str(z["radar"])
                self.meta: dict[str, Any] = json.loads(str(z["meta"])) if "meta" in z.files else {}
        except DataError:
            raise
        except (OSError, ValueError, TypeError) as e:
            raise DataError(f"{path}: cannot read the recording ({e})") from None
        if iq.ndim == 3:  # [frames, sweeps, points]: the DSP takes one sample per point
            iq = iq.mean(axis=1)
        if iq.ndim != 2 or not np.iscomplexobj(iq) or t_s.shape != (iq.shape[0],):
            raise DataError(f"{path}: iq must be complex [frames, points] with one t_s per frame")
        if iq.shape[0] and not np.all(np.diff(t_s) > 0):
            raise DataError(f"{path}: t_s must increase")
        try:
            grid = uniform_frames(t_s, iq, self.frame_rate_hz)
        except ValueError as e:
            raise DataError(f"{path}: {e}") from None
        if grid.resampled:
            log.info(
                "%s: %.3g Hz with uneven frames, resampled to a uniform %.0f Hz (%d gaps > %.0f s"
                " held)",
                path,
                self.frame_rate_hz,
                grid.rate_hz,
                grid.held_gaps,
                MAX_GAP_S,
            )
        self.frame_rate_hz = grid.rate_hz
        self._iq = grid.iq
        self._t_s = grid.t_s
        self._pos = 0
        self._running = False

    @property
    def n_frames(self) -> int:
        """Frames in the recording."""
        return int(self._iq.shape[0])

    def start(self) -> None:
        """Start playing (from where it stopped)."""
        self._running = True

    def stop(self) -> None:
        """Stop playing."""
        self._running = False

    def read(self, n_frames: int) -> RadarFrames | None:
        """Return the next `n_frames` frames, or None at the end (or when stopped)."""
        if not self._running or self._pos >= self.n_frames:
            return None
        a, b = self._pos, min(self._pos + n_frames, self.n_frames)
        self._pos = b
        return RadarFrames(
            t_s=self._t_s[a:b],
            iq=self._iq[a:b],
            range_start_m=self.range_start_m,
            range_step_m=self.range_step_m,
            frame_rate_hz=self.frame_rate_hz,
            radar=self.radar,
        )


class RecordingWriter:
    """Collects frames and writes them in the recording format.

    Args:
        radar: Name of the part that produced the frames.
        meta: Anything worth keeping with the recording (JSON-serialisable).
    """

    def __init__(self, radar: str, meta: dict[str, Any] | None = None) -> None:
        self.radar = radar
        self.meta = dict(meta or {})
        self._iq: list[np.ndarray] = []
        self._t: list[np.ndarray] = []
        self._geometry: tuple[float, float, float] | None = None

    def add(self, frames: RadarFrames) -> None:
        """Append a batch (all batches must share one geometry)."""
        geom = (frames.range_start_m, frames.range_step_m, frames.frame_rate_hz)
        if self._geometry is None:
            self._geometry = geom
        elif geom != self._geometry:
            raise ValueError("frames of one recording must share range and frame rate")
        self._iq.append(np.asarray(frames.iq, np.complex64))
        self._t.append(np.asarray(frames.t_s, np.float64))

    def write(self, path: Path) -> int:
        """Write the recording; returns the number of frames.

        Raises:
            DataError: nothing was recorded, or the file cannot be written.
        """
        if self._geometry is None:
            raise DataError("nothing to record: the source gave no frames")
        start, step, rate = self._geometry
        iq = np.concatenate(self._iq)
        try:
            with open(path, "wb") as f:
                np.savez(
                    f,
                    iq=iq,
                    t_s=np.concatenate(self._t),
                    range_start_m=np.float64(start),
                    range_step_m=np.float64(step),
                    frame_rate_hz=np.float64(rate),
                    radar=np.array(self.radar),
                    meta=np.array(json.dumps(self.meta)),
                )
        except OSError as e:
            raise DataError(f"cannot write {path}: {e.strerror or e}") from None
        return int(iq.shape[0])


def record(
    source: RadarSource, path: Path, *, radar: str, meta: dict[str, Any], max_s: float
) -> int:
    """Record up to `max_s` seconds of `source` into `path`; returns the number of frames."""
    writer = RecordingWriter(radar, meta)
    n_batch = max(1, int(round(10.0 * source.frame_rate_hz)))
    limit = int(round(max_s * source.frame_rate_hz))
    n = 0
    source.start()
    try:
        while n < limit and (frames := source.read(min(n_batch, limit - n))) is not None:
            writer.add(frames)
            n += frames.n_frames
    finally:
        source.stop()
    return writer.write(path)
