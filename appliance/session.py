"""The session life cycle: the night's story, one staged epoch at a time.

States (`SessionUpdate.state` when one changes, each change also an event):

    monitoring ──user seen for start_after_s──▶ in_bed ──intent──▶ trying_to_sleep
        ▲                                         │                      │
        │                                         ▼                      ▼
        │                     out_of_bed ◀──absent──  asleep ⇄ awake (spells)
        │                         │  back within close_after_absent_s: back_in_bed
        └── closed (gone close_after_absent_s, the latest hour, or a flush) ◀┘

A session starts when the user has been seen for `start_after_s` (presence over 5 minutes, as the
seed product did) and begins at the first epoch of that presence run; it closes when the user has
been gone for `close_after_absent_s`, ending at the last epoch the user was seen, or at
`latest_close_h` local time. A short absence inside it (a bathroom trip) is an out-of-bed episode
of the same night, never a second session. "trying_to_sleep" is announced live when the causal
intent score (appliance.intent) has held high for `_INTENT_HOLD` epochs; at close the morning pass
finds trying-to-sleep and the final wake with change points and computes the night's metrics
(appliance.metrics). A session that starts in the day (outside night_start_h–night_end_h) and
lasts less than `nap_max_s` is flagged a nap.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np

from appliance.clock import local_datetime
from appliance.config import SessionConfig
from appliance.frames import ABSENT, EPOCH_S, SessionEvent, Stage, StagedEpoch
from appliance.intent import IntentScorer, IntentTimes, find_intent
from appliance.metrics import SleepMetrics, sleep_metrics

__all__ = ["STATES", "NightSummary", "OutOfBed", "SessionTracker", "SessionUpdate"]

_SLEEP = (Stage.LIGHT, Stage.DEEP, Stage.REM)
_INTENT_HIGH = 0.6
_INTENT_HOLD = 4
"""Epochs of high intent score (2 min) before "trying_to_sleep" is announced live."""
_PERSISTENT_EPOCHS = 20
"""Latency to persistent sleep: the first run of 10 min of sleep (20 epochs)."""

STATES: tuple[str, ...] = (
    "monitoring",
    "in_bed",
    "trying_to_sleep",
    "asleep",
    "awake",
    "out_of_bed",
)
"""The live states `SessionUpdate.state` takes."""


@dataclass(frozen=True, slots=True)
class OutOfBed:
    """One out-of-bed episode inside a session.

    Attributes:
        start_s: Start of its first absent epoch, UTC epoch seconds.
        duration_min: Its length, minutes (whole epochs).
    """

    start_s: float
    duration_min: float


@dataclass(frozen=True, slots=True)
class NightSummary:
    """A closed session, as the morning report shows it.

    Attributes:
        start_s: Start of the first epoch in bed, UTC epoch seconds.
        end_s: End of the last epoch in bed, UTC epoch seconds.
        first_index: Pipeline epoch index of the session's first epoch.
        hypnogram: (n,) int8 codes per epoch (Stage values or ABSENT).
        intent: Trying-to-sleep and final-wake indices (into `hypnogram`).
        metrics: The night's sleep metrics (latency from the intent).
        out_of_bed: The out-of-bed episodes, in order.
        persistent_sol_min: Intent to the first 10 min of uninterrupted sleep, min, or None.
        other_epochs: Epochs whose data in the user's zone belonged to someone else (partner,
            pet), not scored as the user's.
        nap: The session is a nap (started in the day, shorter than `nap_max_s`).
        closed_by: "absence", "latest_hour" or "flush".
    """

    start_s: float
    end_s: float
    first_index: int
    hypnogram: np.ndarray
    intent: IntentTimes
    metrics: SleepMetrics
    out_of_bed: tuple[OutOfBed, ...] = ()
    persistent_sol_min: float | None = None
    other_epochs: int = 0
    nap: bool = False
    closed_by: str = "absence"

    def time_of(self, index: int | None) -> float | None:
        """UTC epoch seconds of the start of hypnogram epoch `index` (None stays None)."""
        return None if index is None else self.start_s + index * EPOCH_S

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary (stored with the session)."""
        m = self.metrics
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "first_index": self.first_index,
            "intent_index": self.intent.intent_index,
            "final_wake_index": self.intent.final_wake_index,
            "intent_s": self.time_of(self.intent.intent_index),
            "wake_up_s": self.time_of(m.final_wake_index),
            "sleep_latency_min": m.sol_min,
            "persistent_sleep_latency_min": self.persistent_sol_min,
            "out_of_bed_episodes": [
                {"start_s": e.start_s, "duration_min": e.duration_min} for e in self.out_of_bed
            ],
            "other_epochs": self.other_epochs,
            "nap": self.nap,
            "closed_by": self.closed_by,
            "metrics": m.to_dict(),
        }


@dataclass(slots=True)
class SessionUpdate:
    """What one epoch changed: events, epochs to store, a start and/or a close.

    Attributes:
        events: Life-cycle events, in time order.
        started_s: Start time of a session that began with this update, or None.
        epochs: Epochs that now belong to the open session (to be stored), in order.
        closed: The summary of a session that closed with this update, or None.
        state: The new live state (one of `STATES`) if it changed, else None.
    """

    events: list[SessionEvent] = field(default_factory=list)
    started_s: float | None = None
    epochs: list[StagedEpoch] = field(default_factory=list)
    closed: NightSummary | None = None
    state: str | None = None


def _episodes(hyp: np.ndarray, start_s: float) -> tuple[OutOfBed, ...]:
    present = np.flatnonzero(hyp != ABSENT)
    if present.size == 0:
        return ()
    out: list[OutOfBed] = []
    i, last = int(present[0]), int(present[-1])
    while i <= last:
        if hyp[i] == ABSENT:
            j = i
            while hyp[j] == ABSENT:
                j += 1
            out.append(OutOfBed(start_s + i * EPOCH_S, (j - i) * EPOCH_S / 60.0))
            i = j
        i += 1
    return tuple(out)


def _persistent_onset(hyp: np.ndarray, frm: int) -> int | None:
    run = 0
    for i in range(max(frm, 0), hyp.shape[0]):
        run = run + 1 if hyp[i] in _SLEEP else 0
        if run >= _PERSISTENT_EPOCHS:
            return i - run + 1
    return None


class SessionTracker:
    """Follows the night's story from staged epochs.

    Args:
        cfg: Start and close thresholds, the latest hour, naps.
        tz: The local time zone (latest hour, naps); None = UTC.
    """

    def __init__(self, cfg: SessionConfig | None = None, tz: ZoneInfo | None = None) -> None:
        self.cfg = cfg or SessionConfig()
        self.tz = tz or ZoneInfo("UTC")
        self._start_n = max(1, math.ceil(self.cfg.start_after_s / EPOCH_S))
        self._close_n = max(1, math.ceil(self.cfg.close_after_absent_s / EPOCH_S))
        self._pending: list[tuple[StagedEpoch, float]] = []  # a presence run before a session
        self._epochs: list[StagedEpoch] = []
        self._scores: list[float] = []
        self._absent: list[tuple[StagedEpoch, float]] = []  # an absence run inside a session
        self._asleep = False
        self._trying = False
        self._high = 0
        self._deadline_s = math.inf
        self._scorer = IntentScorer()
        self.state = "monitoring"

    @property
    def active(self) -> bool:
        """True while a session is open."""
        return bool(self._epochs)

    def _set_state(self, state: str, up: SessionUpdate) -> None:
        if state != self.state:
            self.state = state
            up.state = state

    def _latest_deadline(self, start_s: float) -> float:
        if not self.cfg.latest_close:
            return math.inf
        hh, mm = (int(x) for x in self.cfg.latest_close.split(":"))
        d = local_datetime(start_s, self.tz)
        at = d.replace(hour=hh, minute=mm, second=0, microsecond=0)
        if at <= d:
            at += timedelta(days=1)
        return at.timestamp()

    def update(self, ep: StagedEpoch, lux: float | None = None) -> SessionUpdate:
        """Advance the story by one staged epoch.

        Args:
            ep: The staged epoch.
            lux: Bedroom illuminance, lx, or None (then `ep.features.illuminance_lux`).

        Returns:
            What changed.
        """
        up = SessionUpdate()
        score = self._scorer.update(ep.features, lux)
        present = ep.stage != ABSENT
        if not self.active:
            if present:
                self._pending.append((ep, score))
            else:
                self._pending.clear()
            if len(self._pending) >= self._start_n:
                first = self._pending[0][0]
                up.started_s = first.t_s
                self._deadline_s = self._latest_deadline(first.t_s)
                up.events.append(SessionEvent(first.t_s, "in_bed"))
                self._set_state("in_bed", up)
                for e, s in self._pending:
                    self._append(e, s, up)
                self._pending.clear()
            return up
        if ep.t_s >= self._deadline_s:
            up.closed = self._close(up, "latest_hour")
            return up
        if not present:
            # Held back until the user returns: an absence that ends the night is not part of it.
            self._absent.append((ep, score))
            if len(self._absent) == 1:
                up.events.append(SessionEvent(ep.t_s, "out_of_bed"))
                self._set_state("out_of_bed", up)
            if len(self._absent) >= self._close_n:
                up.closed = self._close(up, "absence")
            return up
        if self._absent:
            away_min = len(self._absent) * EPOCH_S / 60.0
            detail = json.dumps({"away_min": away_min})
            up.events.append(SessionEvent(ep.t_s, "back_in_bed", detail))
            for e, s in self._absent:
                self._append(e, s, up)
            self._absent.clear()
        self._append(ep, score, up)
        return up

    def resume(self, epochs: list[StagedEpoch]) -> None:
        """Carry on with a session a previous run of the daemon left open (its stored epochs).

        The time the daemon was down is a gap: it shows as ABSENT in the hypnogram, and the
        session continues instead of a second night starting. The stored epochs carry the light
        level they were scored with, so their intent scores are the ones the first run had.
        """
        self._pending.clear()
        self._absent.clear()
        self._epochs = list(epochs)
        self._scores = [self._scorer.update(e.features) for e in self._epochs]
        self._asleep = bool(self._epochs) and self._epochs[-1].stage in _SLEEP
        self._trying = self._asleep or any(s >= _INTENT_HIGH for s in self._scores)
        if self._epochs:
            self._deadline_s = self._latest_deadline(self._epochs[0].t_s)
            self.state = "asleep" if self._asleep else ("awake" if self._trying else "in_bed")

    def flush(self) -> SessionUpdate:
        """Close an open session now (end of a recording, shutdown at a latest hour)."""
        up = SessionUpdate()
        if self.active:
            up.closed = self._close(up, "flush")
        self._pending.clear()
        return up

    def _append(self, ep: StagedEpoch, score: float, up: SessionUpdate) -> None:
        self._epochs.append(ep)
        self._scores.append(score)
        up.epochs.append(ep)
        present = ep.stage != ABSENT
        self._high = self._high + 1 if score >= _INTENT_HIGH else 0
        if not self._trying and self._high >= _INTENT_HOLD:
            self._trying = True
            first = self._epochs[-_INTENT_HOLD]
            up.events.append(SessionEvent(first.t_s, "trying_to_sleep"))
            if not self._asleep:
                self._set_state("trying_to_sleep", up)
        asleep = ep.stage in _SLEEP
        if present and asleep != self._asleep:
            up.events.append(SessionEvent(ep.t_s, "asleep" if asleep else "awake"))
            self._asleep = asleep
        if present and (asleep or self.state in ("asleep", "awake", "out_of_bed")):
            self._set_state("asleep" if asleep else "awake", up)
        elif present and self.state == "out_of_bed":
            self._set_state("trying_to_sleep" if self._trying else "in_bed", up)

    def _is_nap(self, start_s: float, end_s: float) -> bool:
        d = local_datetime(start_s, self.tz)
        h = d.hour + d.minute / 60.0
        a, b = self.cfg.night_start_h, self.cfg.night_end_h
        night = (a <= h or h < b) if a > b else (a <= h < b)
        return not night and end_s - start_s < self.cfg.nap_max_s

    def _close(self, up: SessionUpdate, reason: str) -> NightSummary:
        epochs = self._epochs
        scores = np.array(self._scores)
        hyp = np.array([e.stage for e in epochs], np.int8)
        intent = find_intent(scores)
        metrics = sleep_metrics(hyp, epoch_s=EPOCH_S, intent_index=intent.intent_index)
        start_s = epochs[0].t_s
        end_s = epochs[-1].t_s + EPOCH_S
        frm = metrics.intent_index if metrics.intent_index is not None else 0
        onset = _persistent_onset(hyp, frm)
        nap = self._is_nap(start_s, end_s)
        if intent.intent_index is not None and not self._trying:
            up.events.append(SessionEvent(epochs[intent.intent_index].t_s, "trying_to_sleep"))
        if metrics.final_wake_index is not None and metrics.final_wake_index < len(epochs):
            up.events.append(SessionEvent(epochs[metrics.final_wake_index].t_s, "final_wake"))
        detail = json.dumps({"reason": reason, "nap": nap})
        up.events.append(SessionEvent(end_s, "session_closed", detail))
        summary = NightSummary(
            start_s=start_s,
            end_s=end_s,
            first_index=epochs[0].index,
            hypnogram=hyp,
            intent=intent,
            metrics=metrics,
            out_of_bed=_episodes(hyp, start_s),
            persistent_sol_min=None if onset is None else (onset - frm) * EPOCH_S / 60.0,
            other_epochs=sum(1 for e in epochs if e.features.other_fraction >= 0.5),
            nap=nap,
            closed_by=reason,
        )
        self._epochs = []
        self._scores = []
        self._absent.clear()
        self._asleep = False
        self._trying = False
        self._high = 0
        self._deadline_s = math.inf
        self._scorer = IntentScorer()
        self._set_state("monitoring", up)
        return summary
