"""A stored night as the morning report: text for the terminal and a JSON-friendly dict."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from appliance.bedroom import BedroomInsight, Span, bedroom_insight
from appliance.clock import local_datetime
from appliance.frames import ABSENT, EPOCH_S, Stage, stage_name
from appliance.metrics import sleep_metrics
from appliance.report import format_report
from appliance.store import SessionRow, Store

__all__ = [
    "bedroom_lines",
    "epoch_rows",
    "night_alarm",
    "night_bedroom",
    "night_report",
    "session_hypnogram",
]


def session_hypnogram(store: Store, row: SessionRow) -> tuple[float, np.ndarray]:
    """Return (t0_s, codes) of a stored session, with ABSENT filling any gap between epochs."""
    eps = store.epochs(row.id)
    if not eps:
        return row.started_s, np.zeros(0, np.int8)
    first = eps[0].idx
    hyp = np.full(eps[-1].idx - first + 1, ABSENT, np.int8)
    for e in eps:
        hyp[e.idx - first] = e.stage
    return eps[0].t_s, hyp


def epoch_rows(store: Store, row: SessionRow) -> list[dict[str, Any]]:
    """The stored epochs of a session as JSON rows (no features, no raw waveform)."""
    return [
        {
            "t_s": e.t_s,
            "stage": stage_name(e.stage),
            "confidence": e.confidence,
            "presence_confidence": e.presence_confidence,
            "breath_rate": _num(e.breath_rate_bpm),
            "heart_rate": _num(e.heart_rate_bpm),
            "distance_m": _num(e.distance_m),
            "movement": _num(e.movement),
        }
        for e in store.epochs(row.id)
    ]


def _num(v: float | None) -> float | None:
    return None if v is None or v != v else round(float(v), 3)


def night_alarm(store: Store, row: SessionRow) -> dict[str, Any] | None:
    """The alarm of a stored night from its events (a ring just after the night counts too)."""
    end = row.ended_s or row.started_s
    events = list(store.events(row.id)) + [
        e for e in store.events(None) if row.started_s <= e.t_s <= end + 3 * 3600.0
    ]
    alarm: dict[str, Any] | None = None
    for e in sorted(events, key=lambda e: e.t_s):
        if e.kind not in ("smart_window_open", "alarm_ringing", "alarm_missed"):
            continue
        try:
            detail = json.loads(e.detail) if e.detail else {}
        except ValueError:
            detail = {}
        alarm = alarm or {"set_s": detail.get("set_s"), "rang_at_s": None, "reason": None}
        if e.kind == "alarm_ringing" and alarm["rang_at_s"] is None:
            alarm.update(rang_at_s=e.t_s, reason=detail.get("reason"))
    return alarm


def night_bedroom(
    store: Store, row: SessionRow, t0_s: float, hyp: np.ndarray
) -> BedroomInsight | None:
    """The bedroom's night (ranges, minutes outside the recommended ranges); None without data."""
    end_s = t0_s + len(hyp) * EPOCH_S
    rows = store.environment(t0_s, end_s)
    if not rows:
        return None
    by_t: dict[float, dict[str, float]] = {}
    for r in rows:
        by_t.setdefault(r.t_s, {})[r.quantity] = r.value
    times = sorted(by_t)

    def col(q: str) -> list[float | None]:
        return [by_t[t].get(q) for t in times]

    asleep = [t0_s + i * EPOCH_S for i, c in enumerate(hyp) if int(c) >= Stage.LIGHT]
    return bedroom_insight(
        times, col("temperature"), col("humidity"), col("illuminance"), asleep, end_s=end_s
    )


def bedroom_lines(b: BedroomInsight) -> list[str]:
    """The morning report's bedroom section."""

    def span(s: Span | None, unit: str, spec: str) -> str:
        return "-" if s is None else f"{s.min:{spec}}-{s.max:{spec}} {unit}"

    return [
        "Bedroom",
        f"  Temperature  {span(b.temperature_c, '°C', '.1f')}"
        f"  ({b.minutes_too_cold:.0f} min below 16 °C, {b.minutes_too_warm:.0f} min above 20 °C)",
        f"  Humidity     {span(b.humidity_pct, '%', '.0f')}"
        f"  ({b.minutes_too_dry:.0f} min below 40 %, {b.minutes_too_humid:.0f} min above 60 %)",
        f"  Light        {span(b.lux, 'lx', '.2f')}"
        f"  ({b.minutes_light_asleep:.0f} min asleep above 1 lx)",
    ]


def night_report(store: Store, row: SessionRow) -> tuple[str, dict[str, Any]]:
    """Report text and data of a closed session from the store alone."""
    tz = ZoneInfo(row.tz or "UTC")
    t0, hyp = session_hypnogram(store, row)
    intent = (row.summary or {}).get("intent_index")
    metrics = sleep_metrics(hyp, epoch_s=EPOCH_S, intent_index=intent)
    alarm = night_alarm(store, row)
    text = format_report(
        device_hyp=hyp,
        t0_s=t0,
        tz=tz,
        metrics=metrics,
        truth_metrics=None,
        agreement=None,
        alarm=alarm,
        title=f"Night of {local_datetime(row.started_s, tz):%A %d %B %Y} (session {row.id})",
        story=row.summary if row.summary and "start_s" in row.summary else None,
    )
    bedroom = night_bedroom(store, row, t0, hyp)
    if bedroom is not None:
        text += "\n\n" + "\n".join(bedroom_lines(bedroom))
    data = {
        "session": row.id,
        "start_s": row.started_s,
        "end_s": row.ended_s,
        "hypnogram": [stage_name(int(c)) for c in hyp],
        "metrics": metrics.to_dict(),
        "summary": row.summary,
        "alarm": alarm,
        "bedroom": None if bedroom is None else asdict(bedroom),
        "epochs": epoch_rows(store, row),
    }
    return text, data
