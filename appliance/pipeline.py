"""The on-device chain, wired in DESIGN.md's order: DSP → presence → tracking → epochs → staging.

`Pipeline.update(frames)` is what a test, a recorded night and the live daemon all feed; it does no
I/O and never reads a clock (times come in the frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from appliance.config import Config
from appliance.dsp import RadarDsp
from appliance.epochs import EpochBuilder
from appliance.frames import EpochFeatures, RadarFrames, RadarSecond, StagedEpoch, TrackedSecond
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
        seconds: list[TrackedSecond] = []
        feats: list[EpochFeatures] = []
        for sec in self.dsp.update(frames):
            tracked = self.tracker.update(sec, self.presence.update(sec))
            if _is_users(sec, tracked):
                tracked = replace(
                    tracked,
                    beat_intervals_s=sec.beat_intervals_s,
                    resp_waveform_mm=tuple(round(float(v), 3) for v in sec.resp_waveform_mm),
                )
            seconds.append(tracked)
            feats.extend(self.epochs.update(tracked, rr_s=tracked.beat_intervals_s or None))
        if lux is not None:
            feats = [replace(f, illuminance_lux=float(lux)) for f in feats]
        return seconds, feats

    def update(self, frames: RadarFrames, lux: float | None = None) -> PipelineOutput:
        """Run one batch of frames through every stage (`lux` as in `features`)."""
        if self.stager is None:
            raise RuntimeError("Pipeline built without a stager: use features()")
        seconds, feats = self.features(frames, lux)
        return PipelineOutput(seconds, [self.stager.update(ep) for ep in feats])

    def flush(self) -> PipelineOutput:
        """Finish the epoch in progress (end of a recording)."""
        feats = self.epochs.flush()
        if self.stager is None:
            return PipelineOutput()
        return PipelineOutput(epochs=[self.stager.update(ep) for ep in feats])
