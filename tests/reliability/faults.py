"""Fault-injection twins shared by the reliability suite.

`ClockRadar` is a radar whose frames are stamped on the daemon's clock as the A121 driver stamps
them (hardware/radar/a121.py: anchored on `clock.now()`), so a clock step reaches the frames like
it would on the device. `Faults` decides, per read, which device fails.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import synthetic

from appliance.clock import VirtualClock
from appliance.frames import RadarFrames

CHUNK_S = 600.0
"""Frames are rendered 10 min at a time, so a long night never sits in memory."""


class ClockRadar:
    """A finite radar: `duration_s` of frames (monotonic), each batch stamped on `clock`.

    Args:
        clock: The daemon's clock; frames are stamped `now + k / fs`.
        duration_s: How much radar time it delivers before it ends (read returns None).
        present: Whether the sleeper is in the scene (False: an empty room).
        on_read: Called with the 1-based read number before each read (inject a fault or step).
        seed: Seed of the rendered chunks.
    """

    frame_rate_hz = synthetic.FS_HZ

    def __init__(
        self,
        clock: VirtualClock,
        duration_s: float,
        *,
        present: bool = True,
        on_read: Callable[[int], None] | None = None,
        seed: int = 0,
    ) -> None:
        self.clock = clock
        self.duration_s = duration_s
        self.present = present
        self.on_read = on_read
        self.seed = seed
        self.reads = 0
        self.starts = 0
        self.stops = 0
        self.delivered = 0
        self._chunk: RadarFrames | None = None
        self._chunk_no = -1

    def start(self) -> None:
        self.starts += 1

    def stop(self) -> None:
        self.stops += 1

    def _iq(self, a: int, b: int) -> np.ndarray:
        per = int(CHUNK_S * self.frame_rate_hz)
        out = []
        while a < b:
            k, off = divmod(a, per)
            if k != self._chunk_no:
                people = ((0.7, 15.0, 6.0, 62.0),) if self.present else ()
                self._chunk = synthetic.frames(CHUNK_S, people=people, seed=self.seed + k)
                self._chunk_no = k
            assert self._chunk is not None
            take = min(b - a, per - off)
            out.append(self._chunk.iq[off : off + take])
            a += take
        return np.concatenate(out)

    def read(self, n_frames: int) -> RadarFrames | None:
        self.reads += 1
        if self.on_read is not None:
            self.on_read(self.reads)
        total = int(round(self.duration_s * self.frame_rate_hz))
        if self.delivered >= total:
            return None
        a, b = self.delivered, min(self.delivered + n_frames, total)
        self.delivered = b
        t = self.clock.now() + (np.arange(b - a) + 1.0) / self.frame_rate_hz
        return RadarFrames(
            t, self._iq(a, b), synthetic.RANGE_START_M, synthetic.RANGE_STEP_M, self.frame_rate_hz
        )
