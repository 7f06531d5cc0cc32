"""Presence: a confidence score in [0, 1] that somebody is in range, with threshold and hysteresis.

Two kinds of evidence make somebody present, and weaker evidence keeps them:

- **A body movement** that stands out of what already moves there (walking in, getting into bed):
  present at once, since nothing in an empty room moves that way (a fan or a curtain moves the
  same way minute after minute; `body_movement`).
- **Breathing**, accumulated per location as a sequential test: each second a target adds to its
  location's evidence (`_STRONG_GAIN` when it breathes like a chest on every count,
  `breathing_evidence_strict`; 1 when only on the looser counts, `breathing_evidence`) and loses
  `_DECAY` when it does not. A location is confirmed as a breather when its evidence reaches
  `_NEED_S` (a dozen seconds of clear breathing or ~40 s of plausible breathing), or the lower
  `_NEED_PRIMED_S` where a breather is expected: for `_PRIME_S` after a body movement at that
  distance (somebody just lay down), or where the chain was told the user was (`expect`: a
  daemon restarted in the night). A fresh detector told nothing asks for the full evidence
  everywhere: priming every distance at start let a curtain that breathed like a sleeper for
  12 s be confirmed, and then kept. A reflector pushed by a draught looks like breathing only
  in bursts, with failing seconds in between that drain its evidence.
- **Somebody who just arrived** (made present by a body movement) is kept on the weak
  evidence below at the distance they arrived at for `_ARRIVAL_KEEP_S`, while their breathing
  is being confirmed: a sleeper settling into bed breathes irregularly at first, and one with
  apnoeic breathing can take minutes to pass even the looser counts (on the shared nights, one
  was dropped 45 s after getting into bed and confirmed two minutes later). Bounded in time,
  so a false arrival cannot latch.
- **A confirmed breather** is then kept on much weaker evidence (`still_breathing`: periodic,
  chest-sized, going on now) while it stays within `_GATE_M` of where it was confirmed, so its
  hypopneas, irregular REM breathing or a symmetric stretch of breaths do not drop it; and the
  verdict is held for `PresenceConfig.hold_s` after the score last crossed the threshold (a
  central apnoea, when the chest hardly moves). Nothing in an empty room can latch: the weaker
  evidence only counts at a confirmed location, and a location is only confirmed by the strict
  test above.

The confidence is the first-order smoothed maximum of the three (a location's breathing evidence
counts as its progress toward confirmation, below the hysteresis band until it is confirmed).

Measured (`python -m benchmarks.radar`, 15 simulated nights; benchmarks/README.md, 2026-12-01):
a still sleeper present in 2222 of 2222 still minutes of whole nights (216 of 218 in windows
started fresh beside a sleeper and told nothing: the two missed after a fresh start beside an
apnoeic sleeper); no presence in 450 minutes of an empty room with an oscillating fan and a
curtain in its draught, nor in 3000 minutes of seeds 15–89 of that scene; entering seen within
0.6 s, leaving within 52–58 s; a fresh detector told nothing confirms a sleeper in a median of
39 s.

References:
    Acconeer, "Presence detection" reference application (A121 documentation): intra-/inter-frame
    motion scores with a threshold; we add respiration periodicity as in breathing-based
    occupancy sensing (e.g. Kaltiokallio et al. 2014, doi:10.1109/TMC.2013.66 for RF occupancy).
    Wald A (1945). Sequential tests of statistical hypotheses. Ann. Math. Statist. 16(2):117–186.
    doi:10.1214/aoms/1177731118 (evidence accumulated until a threshold, the idea behind the
    per-location breathing evidence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from appliance.config import PresenceConfig
from appliance.frames import PresenceState, RadarSecond, Target

__all__ = [
    "MOVING_MM_S",
    "PresenceDetector",
    "body_movement",
    "breathing_evidence",
    "breathing_evidence_strict",
    "still_breathing",
]

MOVING_MM_S = 6.0
"""Movement energy above which a present target counts as moving, mm/s."""

_SMOOTH_TAU_S = 4.0
"""Fall time constant of the confidence, s (one noisy second is no exit)."""
_RISE_TAU_S = 1.0
"""Rise time constant of the confidence, s."""
_GATE_M = 0.15
"""A breathing location's evidence follows a target within this distance, m."""
_STEADY_FACTOR = 3.0
_NOVEL_FACTOR = 5.0
_MOTION_SNR_DB = 12.0
"""A body movement makes somebody present only on a target this far above the floor, dB."""
_ARRIVAL_SNR_DB = 15.0
"""A target this far above the floor, where a body movement was seen the second before, is
somebody arriving (the dynamic power is smoothed over seconds, so a body walking in often
stands out only the second after its first movement), dB."""
_PP_PER_RMS = 2.0 * math.sqrt(2.0)
_STRONG_GAIN = 3.0
"""Evidence per second of a target that passes `breathing_evidence_strict`, s."""
_LOOSE_GAIN = 0.5
"""Evidence per second of a target that passes only `breathing_evidence`, s."""
_DECAY = 1.5
"""Evidence lost per second by a location whose target fails `breathing_evidence`, s."""
_NEED_S = 36.0
"""Evidence that confirms a breather at a location nobody was seen arriving at, s."""
_NEED_PRIMED_S = 12.0
"""Evidence that confirms a breather where one is expected (after a movement, `expect`), s."""
_MAX_EVIDENCE_S = 60.0
"""Cap of a location's evidence, s (a long stretch of breathing is not credit for ever)."""
_MOTION_HISTORY_S = 10.0
"""A movement is novel only against this much history, s: in the first seconds after a start
the steady level of what already moves there (a fan) is not known yet."""
_NEW_AFTER_S = 20.0
"""A target is new where none was seen within the gate for this long, s."""
_PRIME_S = 90.0
"""How long a body movement primes its location for breathing evidence, s."""
_ARRIVAL_KEEP_S = 300.0
"""How long somebody who arrived by a body movement is kept on the weak evidence before their
breathing is confirmed, s (the slowest confirmations of irregular breathers take 2–6 min)."""


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 below lo, 1 above hi, linear between (NaN gives 0)."""
    if not math.isfinite(x):
        return 0.0
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def _snr_weight(t: Target) -> float:
    """How much a target stands out of the noise floor, [0, 1] (0.5 at 12 dB)."""
    return _sigmoid((t.snr_db - 12.0) / 2.0)


def body_movement(t: Target) -> bool:
    """Whether a target's movement this second is a body movement, not a steady vibration.

    A fan's blades or a humming appliance move the same way minute after minute; a body moves
    in bouts. Movement counts when it stands well above the bin's own steady level.
    """
    return t.movement >= MOVING_MM_S and t.movement >= _STEADY_FACTOR * t.steady_movement


def _breathing_counts(
    t: Target,
    *,
    q: tuple[float, float],
    cvi: tuple[float, float],
    cva: tuple[float, float],
    asym: tuple[float, float],
    rate: tuple[float, float] = (6.5, 8.0),
    big: tuple[float, float] = (15.0, 22.0),
) -> float:
    """Product of the breathing-chest counts of `breathing_evidence`, each a ramp (lo, hi).

    Without three complete breaths (the variabilities are NaN) nothing counts: a steadiness
    that was never measured is no evidence.
    """
    if t.breath_rate_bpm is None or t.breath_amp_mm <= 0.0:
        return 0.0
    if not (math.isfinite(t.breath_interval_cv) and math.isfinite(t.breath_amp_cv)):
        return 0.0
    periodic = _ramp(t.resp_quality, *q) * _ramp(t.breath_rate_bpm, *rate)
    size = _ramp(t.breath_amp_mm, 0.3, 0.6) * (1.0 - _ramp(t.breath_amp_mm, *big))
    steady = (1.0 - _ramp(t.breath_amp_cv, *cva)) * (1.0 - _ramp(t.breath_interval_cv, *cvi))
    asymmetric = _ramp(abs(t.breath_ti_ratio - 0.5), *asym)
    now = _ramp(t.recent_resp_mm / (t.breath_amp_mm / _PP_PER_RMS), 0.15, 0.35)
    return periodic * size * steady * asymmetric * now


def breathing_evidence(t: Target) -> float:
    """How much a target's respiration band looks like a breathing chest, [0, 1].

    All of it must hold: periodic (spectral concentration in the band) at a sleeper's rate
    (>= 8/min; an oscillating fan head sweeps slower, at 3–12/min), breaths of a chest's
    size (0.5–15 mm peak to peak), not the broad peak and random amplitudes of a reflector
    pushed by air (a damped cloth pendulum driven by a draught has a spectral peak as wide as
    its damping, a Rayleigh envelope with amplitude CV ≈ 0.5 and wandering intervals, where a
    sleeper's breaths keep their depth and rhythm within ~10–20 %), asymmetric (a chest
    inspires and expires at different speeds, Ti/Ttot ≈ 0.4, Tobin et al. 1983,
    doi:10.1378/chest.84.2.202, whichever sign the radar gives; a swinging cloth or fan head
    takes as long each way, 0.5), and going on now (the last 8 s, so that leaving ends it within
    seconds, not a 30-s window later).
    """
    return _breathing_counts(t, q=(0.55, 0.8), cvi=(0.2, 0.35), cva=(0.35, 0.6), asym=(0.03, 0.06))


def breathing_evidence_strict(t: Target) -> float:
    """`breathing_evidence` with the limits of a clearly breathing sleeper, [0, 1].

    Periodicity above ~0.8, interval CV below ~0.1, amplitude CV below ~0.25, |Ti/Ttot − 0.5|
    above ~0.05, at >= ~8/min and below ~14 mm peak to peak (an oscillating fan head sweeping a
    reflector by 10–25 mm at 8/min can otherwise pass): what most of a still sleeper's seconds
    show (median periodicity 0.93, interval CV 0.06, amplitude CV 0.10 on the simulated nights)
    and a narrowband random process (a cloth
    pendulum in a draught: periodicity 0.6, interval CV 0.25 in the median) only in rare
    coincidences of a few seconds.
    """
    return _breathing_counts(
        t,
        q=(0.75, 0.85),
        cvi=(0.09, 0.14),
        cva=(0.2, 0.35),
        asym=(0.04, 0.07),
        rate=(7.5, 9.0),
        big=(12.0, 16.0),
    )


def still_breathing(t: Target) -> float:
    """Whether an already confirmed breather is still breathing, [0, 1].

    Only periodic, chest-sized and going on now: once a location is confirmed, its hypopneas,
    irregular REM breathing or a symmetric stretch of breaths must not drop it.
    """
    if t.breath_rate_bpm is None or t.breath_amp_mm <= 0.0:
        return 0.0
    periodic = _ramp(t.resp_quality, 0.3, 0.55)
    size = _ramp(t.breath_amp_mm, 0.2, 0.4) * (1.0 - _ramp(t.breath_amp_mm, 15.0, 22.0))
    now = _ramp(t.recent_resp_mm / (t.breath_amp_mm / _PP_PER_RMS), 0.1, 0.25)
    return periodic * size * now


def _novel_movement(t: Target) -> bool:
    """Body movement well above what already moves at that distance.

    Stricter than `body_movement`: where something already moves (a curtain), a gust must not
    count; where nothing moved before (steady level 0), any body movement counts at once.
    """
    return t.movement >= MOVING_MM_S + _NOVEL_FACTOR * t.steady_movement


def _motion_evidence(t: Target) -> bool:
    """Body movement strong enough to make somebody present on its own (walking in)."""
    return _novel_movement(t) and t.snr_db >= _MOTION_SNR_DB


@dataclass(slots=True)
class _Location:
    """Breathing evidence accumulated at one distance."""

    distance_m: float
    evidence_s: float
    seen: bool = True


class PresenceDetector:
    """Turns `RadarSecond`s into `PresenceState`s.

    Args:
        cfg: Threshold, hysteresis and hold time.
    """

    def __init__(self, cfg: PresenceConfig | None = None) -> None:
        self.cfg = cfg or PresenceConfig()
        self._score = 0.0
        self._present = False
        self._confirmed_m: float | None = None
        self._locations: list[_Location] = []
        self._primed: list[tuple[float, float]] = []  # (distance m, until t_s) after a movement
        self._start_s: float | None = None
        self._moved_m: list[float] = []  # where a novel movement was seen the second before
        self._seen: list[tuple[float, float]] = []  # (distance m, t_s) of recent targets
        self._last_above_s = -math.inf
        self._last_t_s: float | None = None
        self._expected: list[tuple[float, float]] = []  # (distance m, for s) from the start
        self._arrivals: list[tuple[float, float]] = []  # (distance m, until t_s), unconfirmed

    def expect(self, distance_m: float, for_s: float) -> None:
        """Expect a breather at `distance_m` for the first `for_s` seconds of this detector.

        For a chain restarted in the night (the daemon resumed a session, or a radar came back
        after an outage): the user was in bed there minutes ago, so breathing that is merely
        plausible (an apnoeic sleeper's) confirms them there, as after a movement, instead of
        waiting for clear breathing.
        """
        self._expected.append((float(distance_m), float(for_s)))

    def _is_new(self, distance_m: float, t_s: float) -> bool:
        """Whether no target was seen within the gate of `distance_m` in the last seconds."""
        return not any(abs(d - distance_m) <= _GATE_M and t_s - u >= 1.5 for d, u in self._seen)

    def _is_primed(self, distance_m: float, t_s: float) -> bool:
        return any(abs(d - distance_m) <= _GATE_M and t_s <= u for d, u in self._primed)

    def _accumulate(self, sec: RadarSecond, dt: float) -> float:
        """Update the per-location breathing evidence; return the best progress in [0, 1].

        Confirms a location (sets `_confirmed_m`) when its evidence reaches what it needs.
        """
        for loc in self._locations:
            loc.seen = False
        best = 0.0
        for t in sec.targets:
            near = min(
                (c for c in self._locations if abs(c.distance_m - t.distance_m) <= _GATE_M),
                key=lambda c: abs(c.distance_m - t.distance_m),
                default=None,
            )
            if near is None:
                loc = _Location(t.distance_m, 0.0)
                self._locations.append(loc)
            elif near.seen:
                continue  # one target per location and second
            else:
                loc = near
            loc.seen = True
            loc.distance_m = t.distance_m
            w = _snr_weight(t)
            primed = self._is_primed(t.distance_m, sec.t_s)
            if w * breathing_evidence_strict(t) >= 0.5:
                gain = _STRONG_GAIN
            elif primed and w * breathing_evidence(t) >= 0.5:
                # Merely plausible breathing counts only where a breather is expected: a curtain
                # in a steady draught can look plausible for a minute or more.
                gain = _LOOSE_GAIN
            else:
                gain = -_DECAY
            loc.evidence_s = min(_MAX_EVIDENCE_S, max(0.0, loc.evidence_s + gain * dt))
            need = _NEED_PRIMED_S if primed else _NEED_S
            progress = min(1.0, loc.evidence_s / need)
            if progress >= 1.0 and gain > 0.0 and self._confirmed_m is None:
                self._confirmed_m = t.distance_m
            best = max(best, progress)
        for loc in self._locations:
            if not loc.seen:
                loc.evidence_s = max(0.0, loc.evidence_s - _DECAY * dt)
        self._locations = [c for c in self._locations if c.seen or c.evidence_s > 0.0]
        return best

    def _confirmed_evidence(self, sec: RadarSecond) -> float:
        """Evidence that the confirmed breather still breathes, 0 if there is none.

        Until a breather is confirmed, those who just arrived stand in for them (each for its
        own `_ARRIVAL_KEEP_S`). Follows their drift.
        """
        if self._confirmed_m is not None:
            ev, self._confirmed_m = self._still_breathing_at(sec, self._confirmed_m)
            return ev
        self._arrivals = [(d, u) for d, u in self._arrivals if sec.t_s <= u]
        best = 0.0
        for k, (d, u) in enumerate(self._arrivals):
            ev, at = self._still_breathing_at(sec, d)
            self._arrivals[k] = (at, u)
            best = max(best, ev)
        return best

    @staticmethod
    def _still_breathing_at(sec: RadarSecond, distance_m: float) -> tuple[float, float]:
        """(Best `still_breathing` evidence within the gate of a distance, its target's place)."""
        ev, at = 0.0, distance_m
        for t in sec.targets:
            if abs(t.distance_m - distance_m) <= _GATE_M:
                e = _snr_weight(t) * still_breathing(t)
                if e > ev:
                    ev, at = e, t.distance_m
        return ev, at

    def update(self, sec: RadarSecond) -> PresenceState:
        """Score one second and return the presence verdict."""
        if self._start_s is None:
            self._start_s = sec.t_s
            self._primed += [(d, sec.t_s + for_s) for d, for_s in self._expected]
        # A second of data is at most a second of evidence: after a gap (an outage, a clock
        # step) one breathing-like second must not count as the whole gap's worth.
        dt = 1.0 if self._last_t_s is None else min(1.0, max(1e-3, sec.t_s - self._last_t_s))
        self._last_t_s = sec.t_s
        moved = [
            t
            for t in sec.targets
            if _motion_evidence(t)
            or (
                t.snr_db >= _ARRIVAL_SNR_DB
                and any(abs(t.distance_m - d) <= _GATE_M for d in self._moved_m)
            )
        ]
        if sec.t_s - self._start_s < _MOTION_HISTORY_S:
            moved = []
        self._moved_m = [t.distance_m for t in sec.targets if _novel_movement(t)]
        # Somebody arriving is a target that was not there: a movement of a reflector seen at
        # that distance for a while (a curtain in a gust, a sleeper not yet confirmed) only
        # primes its location for breathing evidence.
        self._primed += [(t.distance_m, sec.t_s + _PRIME_S) for t in moved]
        moved = [t for t in moved if self._is_new(t.distance_m, sec.t_s)]
        self._arrivals += [(t.distance_m, sec.t_s + _ARRIVAL_KEEP_S) for t in moved]
        self._seen += [(t.distance_m, sec.t_s) for t in sec.targets]
        self._seen = [(d, u) for d, u in self._seen if sec.t_s - u <= _NEW_AFTER_S]
        self._primed = [(d, u) for d, u in self._primed if u >= sec.t_s]
        progress = self._accumulate(sec, dt)
        confirmed = self._confirmed_evidence(sec)
        thr, hyst = self.cfg.threshold, self.cfg.hysteresis
        # Progress toward confirmation shows in the confidence but stays below the band that
        # keeps somebody present: only a confirmed breather or a movement can hold the verdict.
        raw = max(confirmed, 0.9 * (thr - hyst) * progress, 1.0 if moved else 0.0)
        tau = _RISE_TAU_S if raw > self._score else _SMOOTH_TAU_S
        self._score += (1.0 - math.exp(-dt / tau)) * (raw - self._score)
        if moved:
            # A body movement is unambiguous: present this second, not after the smoothing.
            self._score = max(self._score, thr)
        if self._score >= thr:
            self._present = True
            self._last_above_s = sec.t_s
        elif (
            self._present
            and self._score < thr - hyst
            and sec.t_s - self._last_above_s > self.cfg.hold_s
        ):
            self._present = False
            self._confirmed_m = None
            self._arrivals = []
            self._locations = []  # whoever comes next is confirmed afresh
        state = "empty"
        if self._present:
            state = "moving" if any(body_movement(t) for t in sec.targets) else "still"
        return PresenceState(
            t_s=sec.t_s, present=self._present, confidence=self._score, state=state
        )
