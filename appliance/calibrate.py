"""`appliance calibrate`: measure the bed's distances from a minute of the user lying still.

The user lies on their side of the bed, still, breathing normally, for a minute. Each second the
nearest target that breathes (a periodic respiration band) and hardly moves is taken as the
user's chest; the median of those distances is where the user lies. From it:

- the middle of the bed is `_HALF_SIDE_M` beyond the chest (a chest lies about the middle of its
  sleeper's half: a 1.4-m bed has 0.7-m halves);
- the near edge is `_HALF_SIDE_M` before it.

Off the Pi the minute comes from the simulated radar (a still stretch of the default scene).

References:
    Acconeer AB. "Breathing" reference application, Acconeer Exploration Tool handbook,
    docs.acconeer.com (distance of the breathing target from the range profile).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.config import BedConfig, Config
from appliance.dsp import RadarDsp
from appliance.errors import ApplianceError
from appliance.frames import RadarFrames, RadarSecond

__all__ = ["BedMeasurement", "CalibrationError", "measure_bed", "simulated_minute"]

log = logging.getLogger(__name__)

_HALF_SIDE_M = 0.35
_STILL_MOVEMENT = 1.5
_MIN_STILL_S = 30


class CalibrationError(ApplianceError):
    """The minute did not show a user lying still (one line for the user)."""


@dataclass(frozen=True, slots=True)
class BedMeasurement:
    """What a calibration measured.

    Attributes:
        user_m: Median distance of the user's chest, metres.
        spread_m: Interquartile range of that distance, metres.
        still_s: Seconds of still breathing the median rests on.
        near_edge_m: Derived distance of the bed's near edge, metres.
        middle_m: Derived distance of the bed's middle, metres.
    """

    user_m: float
    spread_m: float
    still_s: int
    near_edge_m: float
    middle_m: float

    def bed(self, base: BedConfig | None = None) -> BedConfig:
        """Return `base` (or the default) with the measured near edge and middle."""
        b = base or BedConfig()
        return b.model_copy(update={"near_edge_m": self.near_edge_m, "middle_m": self.middle_m})

    def to_toml(self) -> str:
        """The `[bed]` table to paste into the config file."""
        return (
            f"[bed]\n# measured: user at {self.user_m:.2f} m (IQR {self.spread_m:.3f} m,"
            f" {self.still_s} s still)\nnear_edge_m = {self.near_edge_m:.2f}\n"
            f"middle_m = {self.middle_m:.2f}\n"
        )


def measure_bed(seconds: Iterable[RadarSecond]) -> BedMeasurement:
    """Measure where the user lies from the DSP's seconds of a still minute.

    Args:
        seconds: The DSP's seconds (targets nearest first).

    Returns:
        The measurement.

    Raises:
        CalibrationError: Fewer than 30 still-breathing seconds.
    """
    ds: list[float] = []
    for sec in seconds:
        for t in sec.targets:
            if t.breath_rate_bpm is not None and t.movement < _STILL_MOVEMENT:
                ds.append(t.distance_m)
                break
    if len(ds) < _MIN_STILL_S:
        raise CalibrationError(
            f"only {len(ds)} s of still breathing seen (need {_MIN_STILL_S}): lie still on your"
            " side of the bed, facing the device, and run it again"
        )
    q = statistics.quantiles(ds, n=4)
    user = statistics.median(ds)
    return BedMeasurement(
        user_m=user,
        spread_m=q[2] - q[0],
        still_s=len(ds),
        near_edge_m=round(max(user - _HALF_SIDE_M, 0.0), 2),
        middle_m=round(user + _HALF_SIDE_M, 2),
    )


def measure_frames(batches: Iterable[RadarFrames]) -> BedMeasurement:
    """Run radar frames through the DSP and measure the bed (see `measure_bed`)."""
    dsp = RadarDsp()
    secs: list[RadarSecond] = []
    for fr in batches:
        secs.extend(dsp.update(fr))
    # The DSP's rates need ~30 s of history: the first half minute only warms it up.
    return measure_bed(secs)


def simulated_minute(cfg: Config, seed: int = 0, *, warmup_s: float = 30.0) -> list[RadarFrames]:
    """A minute (plus the DSP's warm-up) of the simulated user lying still, as radar batches.

    Args:
        cfg: The configuration (radar, simulator scene and nights).
        seed: Noise seed.
        warmup_s: Seconds rendered before the minute, for the DSP's windows.

    Returns:
        1-s batches of frames.
    """
    from hardware.radar.night import default_night_path, load_night
    from hardware.radar.scene import build_scene
    from hardware.radar.simulated import SimulatedRadar

    night_path = cfg.simulator.night or default_night_path("sleeper")
    scene = build_scene("asleep-at-once", load_night(night_path), None, cfg.simulator.seed)
    radar = SimulatedRadar(scene, cfg.radar, 0.0, seed)
    start = (scene.recording_start_s or 0.0) + 600.0
    radar.start()
    radar.seek(start - warmup_s)
    n = int(round(cfg.radar.frame_rate_hz))
    out: list[RadarFrames] = []
    for _ in range(int(60.0 + warmup_s)):
        fr = radar.read(n)
        if fr is None:
            break
        out.append(fr)
    return out
