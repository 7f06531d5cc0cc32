"""The session life cycle: monitoring → in bed → (asleep / awake / out of bed) → closed.

A session starts when the user has been seen for `start_after_s` (presence over 5 minutes, as the
seed product did) and begins at the first epoch of that presence run; it closes when the user has
been gone for `close_after_absent_s`, ending at the last epoch the user was seen. A short absence
inside it (a bathroom trip) is an out-of-bed episode of the same night, never a second session.
At close, the morning pass finds trying-to-sleep and the final wake (appliance.intent) and computes
the night's metrics (appliance.metrics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from appliance.config import SessionConfig
from appliance.frames import ABSENT, EPOCH_S, SessionEvent, Stage, StagedEpoch
from appliance.intent import IntentScorer, IntentTimes, find_intent
from appliance.metrics import SleepMetrics, sleep_metrics

__all__ = ["NightSummary", "SessionTracker", "SessionUpdate"]

_SLEEP = (Stage.LIGHT, Stage.DEEP, Stage.REM)


@dataclass(frozen=True, slots=True)
class NightSummary:
    """A closed session, as the morning report shows it.

    Attributes:
        start_s: Start of the first epoch in bed, UTC epoch seconds.
        end_s: End of the last epoch in bed, UTC epoch seconds.
        first_index: Pipeline epoch index of the session's first epoch.
        hypnogram: (n,) int8 codes per epoch (Stage values or ABSENT).
        intent: Trying-to-sleep and final-wake indices (into `hypnogram`).
        metrics: The night's sleep metrics.
    """

    start_s: float
    end_s: float
    first_index: int
    hypnogram: np.ndarray
    intent: IntentTimes
    metrics: SleepMetrics

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary (stored with the session)."""
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "first_index": self.first_index,
            "intent_index": self.intent.intent_index,
            "final_wake_index": self.intent.final_wake_index,
            "metrics": self.metrics.to_dict(),
        }


@dataclass(slots=True)
class SessionUpdate:
    """What one epoch changed: events, epochs to store, a start and/or a close.

    Attributes:
        events: Life-cycle events, in time order.
        started_s: Start time of a session that began with this update, or None.
        epochs: Epochs that now belong to the open session (to be stored), in order.
        closed: The summary of a session that closed with this update, or None.
    """

    events: list[SessionEvent] = field(default_factory=list)
    started_s: float | None = None
    epochs: list[StagedEpoch] = field(default_factory=list)
    closed: NightSummary | None = None


class SessionTracker:
    """Follows the night's story from staged epochs.

    Args:
        cfg: Start and close thresholds.
    """

    def __init__(self, cfg: SessionConfig | None = None) -> None:
        self.cfg = cfg or SessionConfig()
        self._start_n = max(1, math.ceil(self.cfg.start_after_s / EPOCH_S))
        self._close_n = max(1, math.ceil(self.cfg.close_after_absent_s / EPOCH_S))
        self._pending: list[tuple[StagedEpoch, float]] = []  # a presence run before a session
        self._epochs: list[StagedEpoch] = []
        self._scores: list[float] = []
        self._absent: list[tuple[StagedEpoch, float]] = []  # an absence run inside a session
        self._asleep = False
        self._scorer = IntentScorer()

    @property
    def active(self) -> bool:
        """True while a session is open."""
        return bool(self._epochs)

    def update(self, ep: StagedEpoch) -> SessionUpdate:
        """Advance the story by one staged epoch."""
        up = SessionUpdate()
        score = self._scorer.update(ep.features)
        present = ep.stage != ABSENT
        if not self.active:
            if present:
                self._pending.append((ep, score))
            else:
                self._pending.clear()
            if len(self._pending) >= self._start_n:
                first = self._pending[0][0]
                up.started_s = first.t_s
                up.events.append(SessionEvent(first.t_s, "in_bed"))
                for e, s in self._pending:
                    self._append(e, s, up)
                self._pending.clear()
            return up
        if not present:
            # Held back until the user returns: an absence that ends the night is not part of it.
            self._absent.append((ep, score))
            if len(self._absent) == 1:
                up.events.append(SessionEvent(ep.t_s, "out_of_bed"))
            if len(self._absent) >= self._close_n:
                up.closed = self._close(up)
            return up
        if self._absent:
            up.events.append(SessionEvent(ep.t_s, "back_in_bed"))
            for e, s in self._absent:
                self._append(e, s, up)
            self._absent.clear()
        self._append(ep, score, up)
        return up

    def resume(self, epochs: list[StagedEpoch]) -> None:
        """Carry on with a session a previous run of the daemon left open (its stored epochs).

        The time the daemon was down is a gap: it shows as ABSENT in the hypnogram, and the
        session continues instead of a second night starting.
        """
        self._pending.clear()
        self._absent.clear()
        self._epochs = list(epochs)
        self._scores = [self._scorer.update(e.features) for e in self._epochs]
        self._asleep = bool(self._epochs) and self._epochs[-1].stage in _SLEEP

    def flush(self) -> SessionUpdate:
        """Close an open session now (end of a recording, shutdown at a latest hour)."""
        up = SessionUpdate()
        if self.active:
            up.closed = self._close(up)
        self._pending.clear()
        return up

    def _append(self, ep: StagedEpoch, score: float, up: SessionUpdate) -> None:
        self._epochs.append(ep)
        self._scores.append(score)
        up.epochs.append(ep)
        asleep = ep.stage in _SLEEP
        if asleep != self._asleep:
            up.events.append(SessionEvent(ep.t_s, "asleep" if asleep else "awake"))
            self._asleep = asleep

    def _close(self, up: SessionUpdate) -> NightSummary:
        epochs = self._epochs
        scores = np.array(self._scores)
        hyp = np.array([e.stage for e in epochs], np.int8)
        intent = find_intent(scores)
        metrics = sleep_metrics(hyp, epoch_s=EPOCH_S, intent_index=intent.intent_index)
        end_s = epochs[-1].t_s + EPOCH_S
        if metrics.final_wake_index is not None and metrics.final_wake_index < len(epochs):
            up.events.append(SessionEvent(epochs[metrics.final_wake_index].t_s, "final_wake"))
        up.events.append(SessionEvent(end_s, "session_closed"))
        summary = NightSummary(
            start_s=epochs[0].t_s,
            end_s=end_s,
            first_index=epochs[0].index,
            hypnogram=hyp,
            intent=intent,
            metrics=metrics,
        )
        self._epochs = []
        self._scores = []
        self._absent.clear()
        self._asleep = False
        return summary
