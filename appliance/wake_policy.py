"""When, inside the smart window, to ring: the latest wakeable moment that is still safe.

The smart window gives the alarm a choice. Ringing at the first light-sleep epoch (the naive
policy) wakes the user gently but throws away the rest of the window; waiting keeps minutes of
sleep but risks the sleeper drifting into deep or REM sleep, from which the deadline then wakes
them. `LatestSafePolicy` makes that trade-off explicitly, as a finite-horizon optimal-stopping
problem (Ferguson, "Optimal Stopping and Applications", ch. 1–3) on a model of the sleeper *and*
of the stager that watches them (`SleeperModel`):

- a Markov chain of (true stage, stager's symbol) pairs per 30-s epoch — a pairwise Markov chain
  (Pieczynski 2003, doi:10.1109/TPAMI.2003.1195998). The symbol is the live stager's stage and
  whether its deep + REM probability reaches `BAD_PROB_EDGE`. The chain is counted on training
  nights (expert stages against the output of a stager that never saw those nights: held-out),
  never on tonight's stager transitions: a stager that rarely calls deep or REM would otherwise
  teach the policy that light sleep always holds. So the policy knows how often the stager
  calls light while the sleeper is in REM, how long its wrong runs last, and how often light
  sleep turns into deep or REM sleep in the morning hours (`MORNING_EPOCHS`);
- the forward filter over tonight's epochs gives a calibrated belief over the true stage (a
  light call is still REM with the probability that REM is called light, given what came
  before);
- ringing at time t is worth the sleep kept, (t − window start) in minutes, minus a penalty
  `bad_wake_min` if the sleeper is then in deep or REM sleep (the grogginess of such a wake —
  sleep inertia, Tassi & Muzet 2000, doi:10.1053/smrv.2000.0098 — in minutes of sleep it is
  worth giving up to avoid it; default `BAD_WAKE_WINDOWS` window lengths: the issue asks first
  that the alarm rings in light sleep or wake, then that it keeps sleep). The deadline is
  forced, in whatever stage it finds the sleeper: the bad outcome the policy plans against;
- the future is valued with the *observations* the alarm will have, not with the true stages:
  the continuation is the best of the plans "let k more epochs pass, then ring at the first
  epoch the stager calls wake or light, else at the deadline" (k = 1 … the epochs left), each
  evaluated exactly under the chain — including the chance that the stager calls light while
  the sleeper is in REM, and the chance that no wakeable call comes before the deadline. It
  rings now iff that is worth at least the best plan: a rollout policy (Bertsekas, Tsitsiklis &
  Wu 1997, doi:10.1023/A:1009635226865), at least as good as the best of its base plans; each
  plan is one backward recursion (a 32×32 matrix times ≤ 90 steps).

Movement bursts (the radar's evidence of an arousal) are extra decision moments between epochs,
not stage evidence: on the shared nights a burst is nearly as frequent in deep and REM sleep as in
light sleep (bursts in 13–21 % of the morning epochs of every stage; a likelihood ratio ≤ 1.6).

Everything here is pure and cheap. The policy only ever brings the ring earlier: the deadline is
the alarm's own, independent path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from appliance.frames import EPOCH_S, StagedEpoch

__all__ = [
    "BAD_PROB_EDGE",
    "BAD_WAKE_WINDOWS",
    "MORNING_EPOCHS",
    "N_SYMBOLS",
    "PRIOR_BOUT_MIN",
    "STAGER_PAIR_COUNTS",
    "STAGER_PAIR_COUNTS_MODEL",
    "FirstWakeablePolicy",
    "LatestSafePolicy",
    "SleeperModel",
    "WakePolicy",
    "belief_of",
    "observation",
    "pair_index",
    "prior_transitions",
]

_N = 4
_WAKEABLE = np.array([True, True, False, False])
_BAD = ~_WAKEABLE
PRIOR_BOUT_MIN: tuple[float, float, float, float] = (2.0, 8.0, 10.0, 12.0)
"""Typical bout length of wake, light, deep and REM in the morning hours, minutes (the prior
chain; of the order Kishi et al. 2008 report, doi:10.1152/ajpregu.00062.2008)."""
# Where a bout goes when it ends (rows: from wake, light, deep, REM).
_PRIOR_EXIT = np.array(
    [
        [0.0, 0.9, 0.0, 0.1],
        [0.35, 0.0, 0.35, 0.3],
        [0.2, 0.8, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0],
    ]
)
STAGER_PAIR_COUNTS: tuple[str, ...] = (
    "896 11 52 1 0 1 0 3 40 0 11 1 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "11 23 2 0 0 0 0 8 0 3 1 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "54 1 293 11 0 0 0 2 5 0 110 1 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "1 1 9 17 0 3 0 7 0 0 4 2 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 1 0 2 0 22 0 0 0 0 0 1 0 3 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "3 8 0 6 0 0 0 73 1 0 0 0 0 0 0 6",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "29 1 6 0 0 0 0 0 477 7 84 2 0 1 0 0",
    "5 0 0 1 0 0 0 0 6 0 1 0 0 0 0 0",
    "1 0 0 0 0 0 0 0 6 4 1 4 0 1 0 3",
    "0 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0",
    "12 1 107 1 0 0 0 0 73 1 1411 37 0 3 0 0",
    "3 0 14 0 0 0 0 0 1 0 15 0 0 0 0 0",
    "1 0 2 5 0 0 0 1 2 4 34 70 0 9 0 14",
    "0 0 2 15 0 2 0 3 0 0 0 1 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 3 0 0 0 2 1 11 0 46 0 0",
    "0 0 0 2 0 8 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 1 1 0 0 0 4 1 0 1 14 0 0 0 48",
    "0 0 0 3 0 0 0 3 1 0 0 0 0 0 0 0",
    "2 0 0 0 0 0 0 0 5 0 3 0 0 0 0 0",
    "40 4 3 1 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "4 3 0 0 0 5 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 11 3 0 0 0 0",
    "4 0 52 4 0 1 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 1 14 0 1 0 3",
    "0 2 4 22 0 8 0 2 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 1 0 8 0 0",
    "1 3 0 11 0 21 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 4 0 0 0 3",
    "0 0 0 0 0 0 0 1 0 0 0 0 0 0 0 0",
    "3 0 0 0 0 0 0 0 4 0 2 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 125 3 8 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 1 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 5 0 1 0 0 0 2",
    "2 0 4 0 0 0 0 0 1 0 5 1 0 0 0 0",
    "0 0 0 0 0 0 0 0 10 0 116 7 0 0 0 1",
    "0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 7 8 0 0 0 5",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 0 1 1 1 3 0 0 0 12",
)
"""Transition counts of (expert stage, stager symbol) pairs, 32 × 32 (row = from, index
`pair_index`; each row written as two lines of 16), over the last 3 h of the 15 shared nights,
each night staged by a stager trained without its subject (leave-one-subject-out): how the
shipped stager's recipe behaves on a sleeper it has never seen. Reproduce with
`python -m benchmarks.alarm --held-out --print-model`; recount when the stager is retrained."""
STAGER_PAIR_COUNTS_MODEL = "27278329ef7aa30a"
"""First 16 hex digits of the SHA-256 of the `models/live.onnx` the counts were made for (a test
fails when the shipped stager changes and the counts were not recounted)."""
BAD_WAKE_WINDOWS = 8.0
"""Default penalty of a deep or REM wake, in window lengths of kept sleep (`LatestSafePolicy`)."""
MORNING_EPOCHS = 360
"""The population chain is counted over the last 3 h of each night (where alarms ring)."""
_MAX_GAP_EPOCHS = 240  # a longer gap (2 h) forgets the night: the belief restarts


def belief_of(epoch: StagedEpoch) -> np.ndarray:
    """The stage belief (wake, light, deep, REM) of a staged epoch, summing to 1.

    The stager's probabilities when they are valid, else all mass on the epoch's stage (uniform
    if it has none).
    """
    p = np.asarray(epoch.probs, np.float64)
    if p.shape == (_N,) and np.all(np.isfinite(p)) and np.all(p >= 0) and p.sum() > 0:
        out: np.ndarray = p / p.sum()
        return out
    b = np.zeros(_N)
    if 0 <= int(epoch.stage) < _N:
        b[int(epoch.stage)] = 1.0
    else:
        b[:] = 1.0 / _N
    return b


def prior_transitions(
    bout_min: tuple[float, float, float, float] = PRIOR_BOUT_MIN,
) -> np.ndarray:
    """The prior stage chain per 30-s epoch from typical bout lengths, (4, 4), rows sum to 1.

    Args:
        bout_min: Typical bout length of wake, light, deep and REM, minutes, each ≥ 0.5.

    Raises:
        ValueError: a bout length below one epoch.
    """
    if len(bout_min) != _N or not all(b >= EPOCH_S / 60.0 for b in bout_min):
        raise ValueError("bout_min: four bout lengths of at least 0.5 min")
    stay = np.array([1.0 - EPOCH_S / 60.0 / b for b in bout_min])
    t = _PRIOR_EXIT * (1.0 - stay)[:, None]
    t[np.arange(_N), np.arange(_N)] = stay
    return t


BAD_PROB_EDGE = 0.25
"""The stager's deep + REM probability from which its output counts as "leaning deep/REM"."""
N_SYMBOLS = 2 * _N
"""Observation symbols: the stager's stage (4) × whether it leans deep/REM (`BAD_PROB_EDGE`)."""


def observation(stage: int, probs: np.ndarray) -> int | None:
    """The observation symbol of one stager output, or None for an epoch without a stage.

    Args:
        stage: The stager's hypnogram code (wake, light, deep, REM = 0..3).
        probs: (4,) its probabilities (wake, light, deep, REM), summing to 1.

    Returns:
        2 × stage + (probs[deep] + probs[REM] ≥ `BAD_PROB_EDGE`), in 0 … 7.
    """
    if not 0 <= int(stage) < _N:
        return None
    p = np.asarray(probs, np.float64)
    bad = float(p[2] + p[3]) if p.shape == (_N,) and np.all(np.isfinite(p)) else 0.0
    return 2 * int(stage) + int(bad >= BAD_PROB_EDGE)


_WAKEABLE_SYMBOL = np.array([o // 2 < 2 for o in range(N_SYMBOLS)])


_N_Z = _N * N_SYMBOLS


def pair_index(stage: int, symbol: int) -> int:
    """The index of a (true stage, observation symbol) pair in `SleeperModel.joint`."""
    return stage * N_SYMBOLS + symbol


@dataclass(frozen=True, slots=True, eq=False)
class SleeperModel:
    """The sleeper and the stager as one Markov chain of (true stage, stager's symbol) pairs.

    A pairwise Markov chain (Pieczynski 2003, "Pairwise Markov chains", IEEE TPAMI,
    doi:10.1109/TPAMI.2003.1195998): the next pair depends on the current pair, so the stager's
    output may depend on its own past and may foretell the sleeper's next stage — which a hidden
    Markov model (errors independent from epoch to epoch) cannot say. Both matter here: the live
    stager's errors come in long runs (its features summarise minutes of context), so a stager
    that has called REM for a while goes on calling it after the sleeper is back in light sleep,
    and a plan that waits for "the next light epoch" may not get one before the deadline.

    Attributes:
        joint: (32, 32) P(next pair | pair) per 30-s epoch, index `pair_index` (true stage:
            wake, light, deep, REM; symbol: `observation`). Counts are fine: normalised by row.

    Raises:
        ValueError: an array of the wrong shape, negative, or with an empty row.
    """

    joint: np.ndarray

    def __post_init__(self) -> None:
        m = np.asarray(self.joint, np.float64)
        if m.shape != (_N_Z, _N_Z) or not np.all(np.isfinite(m)) or np.any(m < 0):
            raise ValueError(f"joint: a ({_N_Z}, {_N_Z}) array of finite non-negative numbers")
        if np.any(m.sum(axis=1) <= 0):
            raise ValueError("joint: every row needs some mass")
        m = m / m.sum(axis=1, keepdims=True)
        m.flags.writeable = False
        object.__setattr__(self, "joint", m)

    @classmethod
    def default(cls) -> SleeperModel:
        """The shipped model: `STAGER_PAIR_COUNTS` (held-out stagers) over the prior."""
        flat = [float(x) for row in STAGER_PAIR_COUNTS for x in row.split()]
        return cls.from_counts(np.array(flat).reshape(_N_Z, _N_Z))

    @staticmethod
    def pair_counts(
        staged: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        morning_epochs: int = MORNING_EPOCHS,
    ) -> np.ndarray:
        """Count consecutive (true stage, symbol) pairs over the last hours of each night.

        Args:
            staged: Per night, aligned per 30-s epoch: (expert stage (n,), codes < 0 = none;
                stager stage (n,); stager probabilities (n, 4)).
            morning_epochs: The epochs counted: those of the last `morning_epochs` scored
                epochs of each night (the smart window is in the morning), > 0.

        Returns:
            (32, 32) transition counts.
        """
        counts = np.zeros((_N_Z, _N_Z))
        for truth, stage, probs in staged:
            y = np.asarray(truth).astype(int)
            scored = np.flatnonzero((y >= 0) & (y < _N))
            if scored.size < 2:
                continue
            lo, hi = max(0, int(scored[-1]) + 1 - morning_epochs), int(scored[-1]) + 1
            prev: int | None = None
            for k in range(lo, hi):
                o = observation(int(stage[k]), probs[k])
                z = None if o is None or not 0 <= y[k] < _N else pair_index(int(y[k]), o)
                if prev is not None and z is not None:
                    counts[prev, z] += 1.0
                prev = z
        return counts

    @classmethod
    def count(
        cls,
        staged: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        *,
        morning_epochs: int = MORNING_EPOCHS,
        prior_epochs: float = 20.0,
    ) -> SleeperModel:
        """Count a model on training nights (population statistics; never tonight's).

        Args:
            staged: As `pair_counts`.
            morning_epochs: As `pair_counts`.
            prior_epochs: As `from_counts`.
        """
        return cls.from_counts(cls.pair_counts(staged, morning_epochs), prior_epochs)

    @classmethod
    def from_counts(cls, counts: np.ndarray, prior_epochs: float = 20.0) -> SleeperModel:
        """The posterior-mean chain of pair counts over a factorised prior.

        The prior, `prior_epochs` pseudo-transitions a row, is the model in which the sleeper's
        next stage depends on the stage only (the counted stage chain over
        `prior_transitions`) and the stager's next symbol on the next stage and its own last
        symbol; rare pairs thus borrow from the common ones instead of being impossible.

        Args:
            counts: (32, 32) transition counts (`pair_counts`), ≥ 0.
            prior_epochs: Pseudo-transitions per row, > 0.

        Raises:
            ValueError: counts of the wrong shape or negative, or prior_epochs ≤ 0.
        """
        c = np.asarray(counts, np.float64)
        if c.shape != (_N_Z, _N_Z) or not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError(f"counts: a ({_N_Z}, {_N_Z}) array of non-negative numbers")
        if not prior_epochs > 0:
            raise ValueError("prior_epochs must be > 0")
        c4 = c.reshape(_N, N_SYMBOLS, _N, N_SYMBOLS)
        stage = c4.sum(axis=(1, 3)) + prior_transitions()  # (s, s')
        stage /= stage.sum(axis=1, keepdims=True)
        emit = c4.sum(axis=0) + 1.0 / N_SYMBOLS  # (o, s', o'): next symbol | last, next stage
        emit /= emit.sum(axis=2, keepdims=True)
        prior = np.einsum("ab,cbd->acbd", stage, emit).reshape(_N_Z, _N_Z)
        return cls(c + prior_epochs * prior)

    def stationary(self) -> np.ndarray:
        """The chain's stationary distribution over pairs, (32,) (no evidence yet)."""
        w, v = np.linalg.eig(self.joint.T)
        p = np.abs(np.real(v[:, int(np.argmin(np.abs(w - 1.0)))]))
        out: np.ndarray = p / p.sum() if p.sum() > 0 else np.full(_N_Z, 1.0 / _N_Z)
        return out


class WakePolicy(Protocol):
    """Decides, at a wakeable moment in the smart window, whether to ring now."""

    def observe(self, epoch: StagedEpoch) -> None:
        """Learn from one live-stager epoch (called for every epoch of the night)."""
        ...

    def ring_now(
        self, belief: np.ndarray, now_s: float, window_start_s: float, set_s: float
    ) -> bool:
        """Return True to ring now (`belief`: (4,) wake/light/deep/REM, sums to 1)."""
        ...


class FirstWakeablePolicy:
    """The naive policy: ring at the first wakeable moment in the window."""

    def observe(self, epoch: StagedEpoch) -> None:
        """Nothing to learn."""

    def ring_now(
        self, belief: np.ndarray, now_s: float, window_start_s: float, set_s: float
    ) -> bool:
        """Always True."""
        return True


class LatestSafePolicy:
    """Ring at the latest wakeable moment that is still safe (module docstring).

    `observe` runs the forward filter over every live-stager epoch of the night; `ring_now`
    compares ringing now with the best plan of waiting. The `belief` the alarm passes is only
    used when no epoch has been observed yet (then as the stage evidence of this moment).

    Args:
        bad_wake_min: Penalty of ringing in deep or REM sleep, minutes of kept sleep, > 0; None =
            `BAD_WAKE_WINDOWS` × the window's length at each decision.
        model: The sleeper and stager model; None = `SleeperModel.default()`.

    Raises:
        ValueError: a parameter out of range.
    """

    def __init__(self, bad_wake_min: float | None = None, *, model: SleeperModel | None = None):
        if bad_wake_min is not None and not (math.isfinite(bad_wake_min) and bad_wake_min > 0):
            raise ValueError(f"bad_wake_min must be > 0, got {bad_wake_min!r}")
        self._bad_wake_min = bad_wake_min
        self.model = model if model is not None else SleeperModel.default()
        self._m = self.model.joint
        self._pi = self.model.stationary()  # (32,) the frozen chain's: computed once
        bad_z = np.repeat(_BAD, N_SYMBOLS).astype(np.float64)  # (32,) true stage is bad
        self._wake_z = np.tile(_WAKEABLE_SYMBOL, _N).astype(np.float64)  # (32,) called wakeable
        # P(deep or REM in the next epoch | pair now): a ring lands in the next epoch.
        self._bad_next = self._m @ bad_z
        self._beta: np.ndarray | None = None  # (32,) P(pair of the last observed epoch | all)
        self._last_index: int | None = None

    def _start(self, symbol: int | None) -> np.ndarray:
        """The belief over pairs with no past: the stationary one, showing this symbol."""
        pi = self._pi
        if symbol is None:
            return pi
        z = np.zeros(_N_Z)
        z[symbol::N_SYMBOLS] = pi[symbol::N_SYMBOLS]
        s = z.sum()
        out: np.ndarray = z / s if s > 0 else pi
        return out

    def observe(self, epoch: StagedEpoch) -> None:
        """Forward-filter one epoch: predict through the pair chain, keep the pairs it shows.

        An epoch without a stage (absent, unscored) only advances the chain; a gap advances it
        by the epochs missed; a gap of more than 2 h starts afresh. An epoch at or before the
        last one (a clock stepped back, the rest of an epoch a pause flushed) is ignored: the
        night's belief is not thrown away for a repeat.
        """
        index = int(epoch.index)
        symbol = observation(int(epoch.stage), belief_of(epoch))
        beta = self._beta
        last = self._last_index
        gap = 0 if last is None else index - last
        if beta is not None and gap <= 0:
            return
        self._last_index = index
        if beta is None or gap > _MAX_GAP_EPOCHS:
            self._beta = self._start(symbol)
            return
        pred = beta @ np.linalg.matrix_power(self._m, gap)
        if symbol is None:
            self._beta = pred
            return
        post = np.zeros_like(pred)
        post[symbol::N_SYMBOLS] = pred[symbol::N_SYMBOLS]
        s = post.sum()
        self._beta = post / s if s > 0 and math.isfinite(s) else self._start(symbol)

    def posterior(self) -> np.ndarray | None:
        """The filtered belief over the true stage of the last observed epoch, (4,), or None."""
        if self._beta is None:
            return None
        out: np.ndarray = self._beta.reshape(_N, N_SYMBOLS).sum(axis=1)
        return out

    def values(
        self,
        now_s: float,
        window_start_s: float,
        set_s: float,
        belief: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ringing now against the best plan of waiting, per true stage of the epoch just ended.

        Args:
            now_s: Now, UTC epoch s.
            window_start_s: The window's start, UTC epoch s.
            set_s: The set time, UTC epoch s.
            belief: (4,) stage belief or (32,) pair belief (`pair_values`); None = the policy's.

        Returns:
            (stop, wait): (4,) as `pair_values`, averaged over the symbols the belief (or, for a
            stage with no mass in it, the chain's stationary distribution) gives each stage.
        """
        b = self._belief(belief)
        stop, wait = self.pair_values(now_s, window_start_s, set_s, b)
        w = b.reshape(_N, N_SYMBOLS)
        pi = self._pi.reshape(_N, N_SYMBOLS)
        w = np.where(w.sum(axis=1, keepdims=True) > 0, w, pi)
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
        return (w * stop.reshape(_N, N_SYMBOLS)).sum(axis=1), (w * wait.reshape(_N, N_SYMBOLS)).sum(
            axis=1
        )

    def pair_values(
        self,
        now_s: float,
        window_start_s: float,
        set_s: float,
        belief: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ringing now against the best plan of waiting, per (true stage, symbol) pair now.

        Args:
            now_s: Now, UTC epoch s (a decision moment: an epoch just ended, or a burst).
            window_start_s: The window's start, UTC epoch s.
            set_s: The set time (the forced ring), UTC epoch s.
            belief: (32,) belief over the pair (8 × true stage + symbol) of the epoch just
                ended, used to pick the best plan; None = the policy's own.

        Returns:
            (stop, wait): (32,) expected value of ringing now, and of the best waiting plan,
            given each pair; minutes of kept sleep net of the bad-wake penalty.
        """
        window_min = max((set_s - window_start_s) / 60.0, 1e-9)
        penalty = (
            self._bad_wake_min if self._bad_wake_min is not None else BAD_WAKE_WINDOWS * window_min
        )
        m = self._m
        ring_value = -penalty * self._bad_next
        g0 = (now_s - window_start_s) / 60.0
        stop = g0 + ring_value
        # Decision moments after now: one per epoch end, the last one the deadline itself.
        n = max(1, math.ceil((set_s - now_s) / EPOCH_S - 1e-9))
        gains = [min(g0 + j * EPOCH_S / 60.0, window_min) for j in range(1, n + 1)]
        gains[-1] = window_min
        # v[j]: value, per pair of the epoch before decision j, of ringing at the first epoch
        # called wake or light from decision j on (the deadline at decision n), backward.
        v: list[np.ndarray] = [stop] * (n + 1)
        v[n] = m @ (gains[n - 1] + ring_value)
        for j in range(n - 1, 0, -1):
            v[j] = m @ (self._wake_z * (gains[j - 1] + ring_value) + (1 - self._wake_z) * v[j + 1])
        # Plan k (k = 1 … n): no ring before decision k; its value given the pair now is
        # (M^(k-1) v[k]). The best plan for the belief is the continuation.
        b = self._belief(belief)
        r = b.copy()  # b M^(k-1): the belief carried through k - 1 epochs without ringing
        best_k, best_val = 1, -math.inf
        for k in range(1, n + 1):
            val = float(r @ v[k])
            if val > best_val:
                best_k, best_val = k, val
            r = r @ m
        best = np.linalg.matrix_power(m, best_k - 1) @ v[best_k]
        return stop, best

    def _belief(self, belief: np.ndarray | None) -> np.ndarray:
        if belief is not None:
            b = np.asarray(belief, np.float64)
            if b.shape == (_N_Z,):
                return b
            if b.shape == (_N,):  # a stage belief: spread over the symbols as the model would
                return self._from_stage_belief(b)
        if self._beta is not None:
            return self._beta
        return self._start(None)

    def _from_stage_belief(self, b: np.ndarray) -> np.ndarray:
        pi = self._pi.reshape(_N, N_SYMBOLS)
        z = (b[:, None] * pi / np.maximum(pi.sum(axis=1, keepdims=True), 1e-12)).reshape(-1)
        s = z.sum()
        out: np.ndarray = z / s if s > 0 else self._start(None)
        return out

    def ring_now(
        self, belief: np.ndarray, now_s: float, window_start_s: float, set_s: float
    ) -> bool:
        """Ring iff ringing now is worth at least the best plan of waiting (class docstring)."""
        if now_s >= set_s:
            return True
        if self._beta is not None:
            b = self._beta
        else:  # no epoch yet tonight: the caller's belief is this moment's only evidence
            p = np.asarray(belief, np.float64)
            ok = p.shape == (_N,) and bool(np.all(np.isfinite(p)))
            b = self._start(observation(int(np.argmax(p)), p) if ok else None)
        stop, wait = self.pair_values(now_s, window_start_s, set_s, b)
        return bool(b @ stop >= b @ wait)
