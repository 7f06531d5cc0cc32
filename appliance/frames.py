"""The typed values that flow between pipeline stages (DESIGN.md, "The job, as data flowing").

Every value is a frozen, slotted dataclass (or a documented numpy array inside one). Times are UTC
epoch seconds from the injected clock; distances are metres; displacements millimetres; rates per
minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

__all__ = [
    "ABSENT",
    "EPOCH_S",
    "STAGE_NAMES",
    "UNSCORED",
    "Breath",
    "EpochFeatures",
    "PresenceState",
    "RadarFrames",
    "RadarSecond",
    "SessionEvent",
    "Stage",
    "StagedEpoch",
    "Target",
    "TrackedSecond",
    "stage_name",
]

EPOCH_S = 30.0
"""Length of a scoring epoch, seconds (AASM)."""


class Stage(IntEnum):
    """The four classes the product scores (AASM N1+N2 = Light, N3 = Deep)."""

    WAKE = 0
    LIGHT = 1
    DEEP = 2
    REM = 3


STAGE_NAMES: tuple[str, ...] = ("wake", "light", "deep", "rem")
UNSCORED = -1
"""Hypnogram code: the epoch has no stage (expert movement time / unscored)."""
ABSENT = -2
"""Hypnogram code: the user was not in bed (or not seen by the radar)."""


def stage_name(code: int) -> str:
    """Return the report string of a hypnogram code: wake|light|deep|rem|absent|unscored."""
    if 0 <= code < len(STAGE_NAMES):
        return STAGE_NAMES[code]
    return "absent" if code == ABSENT else "unscored"


@dataclass(frozen=True, slots=True)
class RadarFrames:
    """A batch of consecutive radar frames, as a source delivers them.

    Attributes:
        t_s: (n,) float64 capture times, UTC epoch seconds.
        iq: (n, n_bins) complex64 sparse IQ, one complex sample per range bin (sweeps already
            averaged by the source); arbitrary but consistent amplitude units.
        range_start_m: Distance of bin 0 from the radar, metres.
        range_step_m: Distance between bins, metres.
        frame_rate_hz: Nominal frame rate, Hz.
        radar: Name of the part or twin that produced the frames.
    """

    t_s: np.ndarray
    iq: np.ndarray
    range_start_m: float
    range_step_m: float
    frame_rate_hz: float
    radar: str = "simulated"

    @property
    def n_frames(self) -> int:
        """Number of frames in the batch."""
        return int(self.iq.shape[0])

    @property
    def n_bins(self) -> int:
        """Number of range bins per frame."""
        return int(self.iq.shape[1])


@dataclass(frozen=True, slots=True)
class Target:
    """One moving reflector (person or pet) the DSP resolves in one second.

    Attributes:
        distance_m: Sub-bin interpolated distance from the radar, metres.
        snr_db: Dynamic (non-static) power over the noise floor, dB.
        resp_amp_mm: RMS of the respiration-band displacement over the last 10 s, mm.
        breath_rate_bpm: Respiration rate over the last 30 s, breaths/min; None if not periodic.
        heart_rate_bpm: Heart rate over the last 30 s, beats/min; None if not resolved.
        movement: Body-movement energy this second: RMS displacement velocity above the
            respiration and cardiac bands, mm/s.
        resp_quality: Periodicity of the respiration band in [0, 1] (spectral peak concentration).
        large_movement: A large body movement this second (posture change, getting in or out).
        steady_movement: Slow running level of `movement` at this range bin (τ = 60 s), mm/s: a
            fan's or a vibrating object's steady motion, which is no body movement.
        breath_interval_cv: Coefficient of variation of the breath-to-breath intervals detected
            in the last 30 s (NaN with fewer than 3 breaths).
        breath_amp_cv: Coefficient of variation of those breaths' amplitudes (NaN likewise).
        breath_amp_mm: Median peak-to-peak amplitude of those breaths, mm (0 if none).
        breath_ti_ratio: Median inspiration share Ti / (Ti + Te) of those breaths (NaN if none):
            ~0.4 for a breathing chest, 0.5 for a swinging object.
        recent_resp_mm: RMS of the respiration-band displacement over the last 8 s, mm.
        heart_quality: Prominence of the heart-rate peak in [0, 1] (0 = none).
        signal_quality: Overall quality of the vital signs in [0, 1] (periodicity × SNR).
    """

    distance_m: float
    snr_db: float
    resp_amp_mm: float
    breath_rate_bpm: float | None
    heart_rate_bpm: float | None
    movement: float
    resp_quality: float
    large_movement: bool = False
    steady_movement: float = 0.0
    breath_interval_cv: float = float("nan")
    breath_amp_cv: float = float("nan")
    breath_amp_mm: float = 0.0
    breath_ti_ratio: float = float("nan")
    recent_resp_mm: float = 0.0
    heart_quality: float = 0.0
    signal_quality: float = 0.0


@dataclass(frozen=True, slots=True)
class Breath:
    """One breath, from end-expiration to the next end-expiration (`appliance.breath`).

    Attributes:
        onset_s: Start of inspiration (end of the previous expiration), UTC epoch seconds.
        inspiration_s: Inspiration time Ti, seconds.
        expiration_s: Expiration time Te (with the end-expiratory pause), seconds.
        amplitude_mm: Peak-to-peak chest excursion of the inspiration, mm.
        interval_s: Ti + Te, the breath-to-breath interval, seconds.
    """

    onset_s: float
    inspiration_s: float
    expiration_s: float
    amplitude_mm: float
    interval_s: float


@dataclass(frozen=True, slots=True)
class RadarSecond:
    """What the DSP extracts from one second of frames.

    Attributes:
        t_s: Time of the last frame of the second, UTC epoch seconds.
        targets: Resolved targets, nearest first.
        noise_floor_db: Estimated dynamic noise floor, dB (same units as `Target.snr_db`'s base).
        resp_waveform_mm: (k,) respiration-band displacement of the strongest target at 10 Hz for
            this second (k = 10), mm; empty when there is no target. Never leaves the device.
        breaths: Breaths of the strongest target completed during this second, oldest first.
        beat_intervals_s: Beat-to-beat intervals of the strongest target's beats detected during
            this second, seconds (empty where the heartbeat is not resolved).
        waveform_distance_m: Distance of the bin `resp_waveform_mm` comes from, metres (NaN if
            none).
    """

    t_s: float
    targets: tuple[Target, ...]
    noise_floor_db: float
    resp_waveform_mm: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    breaths: tuple[Breath, ...] = ()
    beat_intervals_s: tuple[float, ...] = ()
    waveform_distance_m: float = float("nan")


@dataclass(frozen=True, slots=True)
class PresenceState:
    """Presence verdict for one second.

    Attributes:
        t_s: UTC epoch seconds.
        present: True when confidence has crossed the threshold (with hysteresis).
        confidence: Score in [0, 1] that somebody is in range.
        state: "empty", "moving" or "still".
    """

    t_s: float
    present: bool
    confidence: float
    state: str


@dataclass(frozen=True, slots=True)
class TrackedSecond:
    """The primary user's second, after the tracker has chosen among targets.

    Attributes:
        t_s: UTC epoch seconds.
        presence: The presence verdict of this second.
        user: The primary user's target, or None if the user is not seen.
        others: How many other targets (partner, pet) were seen.
        attribution: Whose data the user's zone of the bed holds this second: "user" (the user's
            target is `user`), "other" (a target is in the user's zone but the tracker judged it
            someone else: a pet's fast breathing, another person's rhythm; `user` is None) or
            "none" (nobody in the user's zone).
        user_confidence: How sure the tracker is that `user` is the primary user, [0, 1]; 0 when
            `user` is None.
        beat_intervals_s: The user's beat-to-beat intervals closed this second, seconds (empty
            when the heartbeat is not resolved or the beats are someone else's).
        resp_waveform_mm: The user's breathing displacement this second at 10 Hz, mm (empty
            when it is someone else's). For the device's own display: it never leaves it.
    """

    t_s: float
    presence: PresenceState
    user: Target | None
    others: int
    attribution: str = "user"
    user_confidence: float = 1.0
    beat_intervals_s: tuple[float, ...] = ()
    resp_waveform_mm: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class EpochFeatures:
    """Features of one completed 30-s epoch of the primary user (causal: past and present only).

    Attributes:
        t_s: Start of the epoch, UTC epoch seconds.
        index: Epoch number on the pipeline's grid (from its first frame, or from the UTC epoch
            when the daemon runs it on the wall clock's grid).
        present_fraction: Share of the epoch's seconds with the user seen, [0, 1].
        values: Feature values, aligned with `appliance.epochs.FEATURE_NAMES`; NaN where missing.
        breath_rate_bpm: Median breath rate of the epoch, or None.
        heart_rate_bpm: Median heart rate of the epoch, or None.
        distance_m: Median distance of the user, or None.
        movement: Mean movement energy of the epoch, mm/s.
        presence_confidence: Mean presence confidence of the epoch, [0, 1].
        other_fraction: Share of the epoch's seconds whose data in the user's zone belonged to
            someone else (`TrackedSecond.attribution == "other"`), [0, 1]. Not a model feature.
        user_confidence: Mean tracker confidence over the seconds the user was seen, [0, 1].
            Not a model feature.
        illuminance_lux: Bedroom light level the daemon measured during the epoch, lx; None
            without a light sensor. Not a model feature (the intent stage reads it).
    """

    t_s: float
    index: int
    present_fraction: float
    values: tuple[float, ...]
    breath_rate_bpm: float | None
    heart_rate_bpm: float | None
    distance_m: float | None
    movement: float
    presence_confidence: float
    other_fraction: float = 0.0
    user_confidence: float = 1.0
    illuminance_lux: float | None = None


@dataclass(frozen=True, slots=True)
class StagedEpoch:
    """The live stager's verdict for one epoch.

    Attributes:
        t_s: Start of the epoch, UTC epoch seconds.
        index: Epoch number, as `EpochFeatures.index`.
        stage: Hypnogram code: a `Stage` value, or `ABSENT`.
        probs: Class probabilities (wake, light, deep, rem); all zero when absent.
        confidence: Probability of the chosen stage, [0, 1].
        features: The features it was scored from.
    """

    t_s: float
    index: int
    stage: int
    probs: tuple[float, float, float, float]
    confidence: float
    features: EpochFeatures


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something that happened in the night's story, for the store, MQTT and the TUI.

    Attributes:
        t_s: UTC epoch seconds.
        kind: Session: "in_bed", "trying_to_sleep", "asleep", "awake", "out_of_bed",
            "back_in_bed", "final_wake", "session_closed", "session_resumed",
            "session_interrupted"; alarm: "smart_window_open", "alarm_ringing", "alarm_snoozed",
            "alarm_dismissed", "alarm_missed", "alarm_speaker_failed".
        detail: Free text or a small JSON string.
    """

    t_s: float
    kind: str
    detail: str = ""
