"""Presence: a confidence score in [0, 1] that somebody is in range, with threshold and hysteresis.

The raw score of a second combines how far the strongest target's dynamic power stands above the
noise floor with how periodic its respiration band is (a breathing body is periodic; noise is
not). It is smoothed with a first-order filter, compared with a threshold with hysteresis, and
presence is held for `hold_s` after the score last crossed the threshold, so that a still, deeply
asleep sleeper (or one in a central apnea, when the chest hardly moves) is not dropped. Nothing in
an empty room can latch: the score only rises on a target that stands out of the floor.

References:
    Acconeer, "Presence detection" reference application (A121 documentation): intra-/inter-frame
    motion scores with a threshold; we add respiration periodicity as in breathing-based
    occupancy sensing (e.g. Kaltiokallio et al. 2014, doi:10.1109/TMC.2013.66 for RF occupancy).
"""

from __future__ import annotations

import math
from collections import deque

from appliance.config import PresenceConfig
from appliance.frames import PresenceState, RadarSecond, Target

__all__ = ["MOVING_MM_S", "PresenceDetector", "body_movement", "breathing_evidence"]

MOVING_MM_S = 6.0
"""Movement energy above which a present target counts as moving, mm/s."""

_SMOOTH_TAU_S = 4.0
_RISE_TAU_S = 2.0
_SUSTAIN_S = 12
_CONFIRM_S = 30.0
_GATE_M = 0.15
_STEADY_FACTOR = 3.0
_NOVEL_FACTOR = 5.0
_PP_PER_RMS = 2.0 * math.sqrt(2.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 below lo, 1 above hi, linear between (NaN gives 0)."""
    if not math.isfinite(x):
        return 0.0
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def body_movement(t: Target) -> bool:
    """Whether a target's movement this second is a body movement, not a steady vibration.

    A fan's blades or a humming appliance move the same way minute after minute; a body moves
    in bouts. Movement counts when it stands well above the bin's own steady level.
    """
    return t.movement >= MOVING_MM_S and t.movement >= _STEADY_FACTOR * t.steady_movement


def breathing_evidence(t: Target) -> float:
    """How much a target's respiration band looks like a breathing chest, [0, 1].

    All of it must hold: periodic (spectral concentration in the band) at a sleeper's rate
    (>= 8/min; an oscillating fan head sweeps slower, at 3–12/min), breaths of a chest's
    size (0.5–15 mm peak to peak), a breath-to-breath interval variability of a living breather
    (a fan's oscillating head or an aliased blade line is mechanically regular, CV < 1–2 %;
    sleep breathing varies by several per cent), not the broad peak and random amplitudes of a
    reflector pushed by air (a damped cloth pendulum driven by a draught has a spectral peak as
    wide as its damping, a Rayleigh envelope with amplitude CV ≈ 0.5 and wandering intervals,
    where a sleeper's breaths keep their depth and rhythm within ~10–20 %), and still
    asymmetric (a chest inspires and expires at different speeds, Ti/Ttot ≈ 0.4, Tobin et al.
    1983, doi:10.1378/chest.84.2.202, whichever sign the radar gives; a swinging cloth or fan
    head takes as long each way, 0.5), and
    going on now (the last 8 s, so that leaving ends it within seconds, not a 30-s window later).
    """
    if t.breath_rate_bpm is None or t.breath_amp_mm <= 0.0:
        return 0.0
    periodic = _ramp(t.resp_quality, 0.55, 0.8) * _ramp(t.breath_rate_bpm, 6.5, 8.0)
    size = _ramp(t.breath_amp_mm, 0.3, 0.6) * (1.0 - _ramp(t.breath_amp_mm, 15.0, 22.0))
    living = _ramp(t.breath_interval_cv, 0.01, 0.025)
    steady_amp = (1.0 - _ramp(t.breath_amp_cv, 0.35, 0.6)) * (
        1.0 - _ramp(t.breath_interval_cv, 0.2, 0.35)
    )
    asymmetric = _ramp(abs(t.breath_ti_ratio - 0.5), 0.03, 0.06)
    now = _ramp(t.recent_resp_mm / (t.breath_amp_mm / _PP_PER_RMS), 0.15, 0.35)
    return periodic * size * living * steady_amp * asymmetric * now


def still_breathing(t: Target) -> float:
    """Whether an already confirmed breather is still breathing, [0, 1].

    Only periodic, chest-sized and going on now: once a target has passed `breathing_evidence`
    for `_CONFIRM_S`, its hypopneas, irregular REM breathing or a symmetric stretch of breaths
    must not drop it.
    """
    if t.breath_rate_bpm is None or t.breath_amp_mm <= 0.0:
        return 0.0
    periodic = _ramp(t.resp_quality, 0.3, 0.55)
    size = _ramp(t.breath_amp_mm, 0.2, 0.4) * (1.0 - _ramp(t.breath_amp_mm, 15.0, 22.0))
    now = _ramp(t.recent_resp_mm / (t.breath_amp_mm / _PP_PER_RMS), 0.1, 0.25)
    return periodic * size * now


def _motion_evidence(t: Target) -> float:
    """Body movement strong enough to make somebody present on its own (walking in).

    Stricter than `body_movement`: where something already moves (a curtain), a gust must not
    count; where nothing moved before (steady level 0), any body movement counts at once.
    """
    novel = t.movement >= MOVING_MM_S + _NOVEL_FACTOR * t.steady_movement
    return 1.0 if novel and t.snr_db >= 12.0 else 0.0


class PresenceDetector:
    """Turns `RadarSecond`s into `PresenceState`s.

    Args:
        cfg: Threshold, hysteresis and hold time.
    """

    def __init__(self, cfg: PresenceConfig | None = None) -> None:
        self.cfg = cfg or PresenceConfig()
        self._score = 0.0
        self._recent: deque[float] = deque(maxlen=_SUSTAIN_S)
        self._present = False
        self._confirmed_m: float | None = None
        self._run_m: float | None = None
        self._run_s = 0.0
        self._last_above_s = -math.inf
        self._last_t_s: float | None = None

    @staticmethod
    def raw_score(sec: RadarSecond) -> tuple[float, float]:
        """(breathing, body-movement) evidence in [0, 1] of one second, before smoothing."""
        breath = move = 0.0
        for t in sec.targets:
            snr = _sigmoid((t.snr_db - 12.0) / 2.0)
            breath = max(breath, snr * breathing_evidence(t))
            move = max(move, snr * _motion_evidence(t))
        return breath, move

    def _confirm(self, sec: RadarSecond, breath: float, dt: float) -> float:
        """Evidence of the confirmed breather (0 if none), and its confirmation bookkeeping."""
        best = max(sec.targets, key=breathing_evidence, default=None)
        if breath >= 0.5 and best is not None:
            near = self._run_m is not None and abs(best.distance_m - self._run_m) <= _GATE_M
            self._run_s = self._run_s + dt if near else dt
            self._run_m = best.distance_m
            if self._run_s >= _CONFIRM_S:
                self._confirmed_m = best.distance_m
        if self._confirmed_m is None:
            return 0.0
        ev = 0.0
        for t in sec.targets:
            if abs(t.distance_m - self._confirmed_m) <= _GATE_M:
                e = _sigmoid((t.snr_db - 12.0) / 2.0) * still_breathing(t)
                if e > ev:
                    ev = e
                    self._confirmed_m = t.distance_m
        return ev

    def update(self, sec: RadarSecond) -> PresenceState:
        """Score one second and return the presence verdict."""
        dt = 1.0 if self._last_t_s is None else max(1e-3, sec.t_s - self._last_t_s)
        self._last_t_s = sec.t_s
        breath, move = self.raw_score(sec)
        confirmed = self._confirm(sec, breath, dt)
        # Breathing must be sustained: a sleeper's evidence holds second after second, while a
        # reflector pushed by a draught looks like breathing only in bursts of a few seconds. The
        # second-lowest of the last `_SUSTAIN_S` seconds forgives one bad second, not a burst.
        self._recent.append(breath)
        sustained = sorted(self._recent)[1] if len(self._recent) == self._recent.maxlen else 0.0
        raw = max(sustained, move, confirmed)
        # Rise fast (entering is seen within seconds), fall slower (one noisy second is no exit).
        tau = _RISE_TAU_S if raw > self._score else _SMOOTH_TAU_S
        a = 1.0 - math.exp(-dt / tau)
        self._score += a * (raw - self._score)
        thr, hyst = self.cfg.threshold, self.cfg.hysteresis
        if self._score >= thr:
            self._present = True
            self._last_above_s = sec.t_s
        elif (
            self._present
            and self._score < thr - hyst
            and sec.t_s - self._last_above_s > self.cfg.hold_s
        ):
            self._present = False
        if not self._present:
            self._confirmed_m = None
            self._run_m = None
            self._run_s = 0.0
        state = "empty"
        if self._present:
            moving = any(body_movement(t) for t in sec.targets)
            state = "moving" if moving else "still"
        return PresenceState(
            t_s=sec.t_s, present=self._present, confidence=self._score, state=state
        )
