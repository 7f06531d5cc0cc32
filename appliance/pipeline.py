"""The on-device chain, wired in DESIGN.md's order: DSP → presence → tracking → epochs → staging.

`Pipeline.update(frames)` is what a test, a recorded night and the live daemon all feed; it does no
I/O and never reads a clock (times come in the frames). A source that does its own DSP (the
MR60BHA2 module) enters after the DSP: `update_module(readings)` maps the module's seconds through
`appliance.module_front.ModuleFront`, and `update_seconds(seconds)` takes `RadarSecond`s from any
front; presence, tracking, epochs and staging then run exactly as for IQ frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from appliance.config import Config
from appliance.dsp import RadarDsp
from appliance.epochs import EpochBuilder
from appliance.frames import EpochFeatures, RadarFrames, RadarSecond, StagedEpoch, TrackedSecond
from appliance.module_front import ModuleFront, ModuleReading
from appliance.presence import PresenceDetector
from appliance.staging import Stager
from appliance.tracking import UserTracker

__all__ = ["Pipeline", "PipelineOutput"]


@dataclass(slots=True)
class PipelineOutput:
    """What a batch of frames produced.

    Attributes:
        seconds: The tracked seconds completed by the batch, oldest first.
        epochs: The staged epochs completed by the batch, oldest first.
    """

    seconds: list[TrackedSecond] = field(default_factory=list)
    epochs: list[StagedEpoch] = field(default_factory=list)


_SAME_TARGET_M = 0.15
"""The DSP's waveform and beats come from its strongest target: the user's if it is the user's
bin."""


def _is_users(sec: RadarSecond, tracked: TrackedSecond) -> bool:
    """Whether the DSP's strongest target (its waveform and beats) is the tracked user."""
    u = tracked.user
    # NaN (no waveform) or another bin (the partner's chest) is not the user's.
    return u is not None and abs(u.distance_m - sec.waveform_distance_m) <= _SAME_TARGET_M


def _staged(
    stager: Stager, seconds: list[TrackedSecond], feats: list[EpochFeatures]
) -> PipelineOutput:
    return PipelineOutput(seconds, [stager.update(ep) for ep in feats])


class Pipeline:
    """Radar frames in, tracked seconds and staged epochs out.

    Args:
        cfg: The configuration (presence, bed, radar frame rate).
        stager: A loaded stager (loading the model once is the caller's choice); None runs the
            front half only (`features`), as the training code does.
        wall_grid: Epochs on the wall clock's 30-s grid (the daemon), not from the first frame.
        learned_user_m: The user's distance the tracker learned on past nights, metres, or None.
    """

    def __init__(
        self,
        cfg: Config,
        stager: Stager | None,
        *,
        wall_grid: bool = False,
        learned_user_m: float | None = None,
    ) -> None:
        self.dsp = RadarDsp()
        self.module_front = ModuleFront()
        self.presence = PresenceDetector(cfg.presence)
        self.tracker = UserTracker(cfg.bed, learned_user_m)
        self.epochs = EpochBuilder(cfg.radar.frame_rate_hz, wall_grid=wall_grid)
        self.stager = stager

    def features(
        self, frames: RadarFrames, lux: float | None = None
    ) -> tuple[list[TrackedSecond], list[EpochFeatures]]:
        """Run one batch through DSP, presence, tracking and the epoch builder.

        Args:
            frames: The batch.
            lux: The bedroom's latest illuminance, lx, or None without a light sensor; stamped
                on the epochs the batch completes (`EpochFeatures.illuminance_lux`) for the intent
                stage. It is not a stager feature.

        Returns:
            The tracked seconds and the completed epochs' features.
        """
        return self.features_from_seconds(self.dsp.update(frames), lux)

    def features_from_seconds(
        self, seconds: Sequence[RadarSecond], lux: float | None = None
    ) -> tuple[list[TrackedSecond], list[EpochFeatures]]:
        """Run pre-extracted seconds (a front's output) through presence, tracking and epochs.

        Args:
            seconds: Consecutive `RadarSecond`s, oldest first (the DSP's or a module front's).
            lux: As in `features`.

        Returns:
            The tracked seconds and the completed epochs' features.
        """
        tracked_seconds: list[TrackedSecond] = []
        feats: list[EpochFeatures] = []
        for sec in seconds:
            tracked = self.tracker.update(sec, self.presence.update(sec))
            if _is_users(sec, tracked):
                tracked = replace(
                    tracked,
                    beat_intervals_s=sec.beat_intervals_s,
                    resp_waveform_mm=tuple(round(float(v), 3) for v in sec.resp_waveform_mm),
                )
            tracked_seconds.append(tracked)
            feats.extend(self.epochs.update(tracked, rr_s=tracked.beat_intervals_s or None))
        if lux is not None:
            feats = [replace(f, illuminance_lux=float(lux)) for f in feats]
        return tracked_seconds, feats

    def features_from_module(
        self, readings: Sequence[ModuleReading], lux: float | None = None
    ) -> tuple[list[TrackedSecond], list[EpochFeatures]]:
        """Run a module's seconds (MR60BHA2) through its front, presence, tracking and epochs."""
        return self.features_from_seconds(self.module_front.update(readings), lux)

    def update(self, frames: RadarFrames, lux: float | None = None) -> PipelineOutput:
        """Run one batch of frames through every stage (`lux` as in `features`)."""
        stager = self._stager()
        return _staged(stager, *self.features(frames, lux))

    def update_seconds(
        self, seconds: Sequence[RadarSecond], lux: float | None = None
    ) -> PipelineOutput:
        """Run pre-extracted seconds through every stage after the DSP (`lux` as in `features`)."""
        stager = self._stager()
        return _staged(stager, *self.features_from_seconds(seconds, lux))

    def update_module(
        self, readings: Sequence[ModuleReading], lux: float | None = None
    ) -> PipelineOutput:
        """Run a module's seconds (MR60BHA2) through its front and every later stage."""
        stager = self._stager()
        return _staged(stager, *self.features_from_module(readings, lux))

    def _stager(self) -> Stager:
        # Checked before any stage runs, so that a misuse changes no state.
        if self.stager is None:
            raise RuntimeError("Pipeline built without a stager: use features()")
        return self.stager

    def flush(self) -> PipelineOutput:
        """Finish the epoch in progress (end of a recording)."""
        feats = self.epochs.flush()
        if self.stager is None:
            return PipelineOutput()
        return PipelineOutput(epochs=[self.stager.update(ep) for ep in feats])
