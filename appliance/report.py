"""The morning report as plain text: hypnogram charts, sleep metrics, agreement and the alarm.

Pure: every function returns a string and never prints, reads the clock or touches a file. Times
come in as UTC epoch seconds and are shown as local HH:MM in the given time zone. Report lines are
at most `LINE_MAX` characters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import ArrayLike

from appliance.clock import local_datetime
from appliance.frames import ABSENT, EPOCH_S, UNSCORED, Stage
from appliance.metrics import Agreement, SleepMetrics

__all__ = ["LINE_MAX", "format_report", "text_hypnogram"]

logger = logging.getLogger(__name__)

LINE_MAX = 100
"""Longest line `format_report` writes, characters."""

_BLOCK = "█"
_NONE = "—"
_ROWS: tuple[tuple[str, int], ...] = (
    ("Wake", Stage.WAKE),
    ("REM", Stage.REM),
    ("Light", Stage.LIGHT),
    ("Deep", Stage.DEEP),
    ("Away", ABSENT),
)
"""Chart rows, top to bottom, as clinical hypnograms draw them, then out of bed."""
_ROW_LABEL_W = 6
_PREFIX_W = _ROW_LABEL_W + 1  # label, then the "│" axis
_CLOCK_W = 5  # "HH:MM"
_METRIC_LABEL_W = 28
_VALUE_W = 12
_STAGE_W = 14
_PER_STAGE_KEYS = ("sensitivity", "precision", "specificity")


def _hhmm(t_s: float, tz: ZoneInfo) -> str:
    """Return UTC epoch seconds `t_s` as local "HH:MM"."""
    return local_datetime(t_s, tz).strftime("%H:%M")


def _majority(codes: np.ndarray) -> int:
    """Return the most frequent code of a span; ties go to the code seen first."""
    values, first, counts = np.unique(codes, return_index=True, return_counts=True)
    best = np.flatnonzero(counts == counts.max())
    return int(values[best[np.argmin(first[best])]])


def _hour_ticks(t0_s: float, end_s: float, tz: ZoneInfo) -> list[float]:
    """Return the UTC epoch seconds of every local full hour in [t0_s, end_s)."""
    start = local_datetime(t0_s, tz)
    hour = start.replace(minute=0, second=0, microsecond=0)
    t = hour.timestamp()
    if t < t0_s:
        t = (hour + timedelta(hours=1)).timestamp()
    ticks = []
    while t < end_s:
        ticks.append(t)
        t += 3600.0  # absolute hours stay on local full hours across whole-hour DST shifts
    return ticks


def text_hypnogram(
    hypnogram: ArrayLike,
    *,
    t0_s: float,
    tz: ZoneInfo,
    epoch_s: float = EPOCH_S,
    width: int = 96,
    label: str = "device",
) -> str:
    """Draw a hypnogram as a block chart with one row per stage and a local-time axis.

    Rows are Wake, REM, Light, Deep (top to bottom, as clinical hypnograms) and Away (`ABSENT`).
    Each column is a span of epochs and shows the span's majority code (ties: the code seen
    first); `UNSCORED` columns are blank. Under the chart, "┬" ticks mark every local full hour,
    labelled HH:MM where the labels fit.

    Args:
        hypnogram: (n_epochs,) hypnogram codes in time order.
        t0_s: Start of epoch 0, UTC epoch seconds.
        tz: Time zone of the axis labels.
        epoch_s: Epoch length, seconds (> 0).
        width: Chart columns (>= 1); fewer when there are fewer epochs. Lines are `width` + 7
            characters (the row label and the axis).
        label: Name of the scorer, for the header line ("device", "experts").

    Returns:
        The chart: a header line, the five stage rows, the axis and the tick labels, joined by
        newlines (no trailing newline).

    Raises:
        ValueError: If `width` < 1 or `epoch_s` <= 0.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    if not epoch_s > 0:
        raise ValueError(f"epoch_s must be positive, got {epoch_s}")
    hyp = np.asarray(hypnogram, dtype=np.int64).ravel()
    n = int(hyp.size)
    end_s = t0_s + n * epoch_s
    if n == 0:
        return f"{label}: no epochs"
    ncols = min(width, n)
    starts = (np.arange(ncols + 1) * n) // ncols
    column_codes = [_majority(hyp[starts[c] : starts[c + 1]]) for c in range(ncols)]

    minutes = round(n * epoch_s / 60.0)
    header = (
        f"{label}: {_hhmm(t0_s, tz)}–{_hhmm(end_s, tz)} ({minutes // 60} h {minutes % 60:02d} min),"
        f" 1 column = {n * epoch_s / ncols / 60.0:.1f} min"
    )
    lines = [header]
    for name, code in _ROWS:
        cells = "".join(_BLOCK if c == code else " " for c in column_codes)
        lines.append(f"{name:<{_ROW_LABEL_W}}│{cells}")

    tick_cols: list[tuple[int, str]] = []
    for t in _hour_ticks(t0_s, end_s, tz):
        epoch = int((t - t0_s) // epoch_s)
        tick_cols.append((int(np.searchsorted(starts, epoch, side="right")) - 1, _hhmm(t, tz)))
    ticked = {c for c, _ in tick_cols}
    axis = "".join("┬" if c in ticked else "─" for c in range(ncols))
    lines.append(" " * _ROW_LABEL_W + "└" + axis)

    total = _PREFIX_W + ncols
    labels = [" "] * total
    free = 0
    for col, text in tick_cols:
        at = min(max(_PREFIX_W + col - _CLOCK_W // 2, 0), total - _CLOCK_W)
        if at < free or at < 0:
            continue
        labels[at : at + _CLOCK_W] = text
        free = at + _CLOCK_W + 1
    lines.append("".join(labels).rstrip())
    return "\n".join(lines)


def _minutes(v: float | None) -> str:
    return _NONE if v is None else f"{v:.1f} min"


def _percent(v: float | None) -> str:
    return _NONE if v is None else f"{v:.1f} %"


def _count(v: int | None) -> str:
    return _NONE if v is None else str(v)


def _metric_rows(
    t0_s: float, tz: ZoneInfo, epoch_s: float
) -> tuple[tuple[str, Callable[[SleepMetrics], str]], ...]:
    """Return the metrics table rows: (label, formatter of one night's metrics)."""

    def clock(index: int | None) -> str:
        return _NONE if index is None else _hhmm(t0_s + index * epoch_s, tz)

    return (
        ("Time in bed", lambda m: _minutes(m.tib_min)),
        ("Total sleep", lambda m: _minutes(m.tst_min)),
        ("Sleep efficiency", lambda m: _percent(m.se_pct)),
        ("Sleep latency", lambda m: _minutes(m.sol_min)),
        ("Fell asleep at", lambda m: clock(m.sleep_onset_index)),
        ("WASO", lambda m: _minutes(m.waso_min)),
        ("Awakenings (>= 1 min)", lambda m: _count(m.awakenings)),
        ("Out of bed (times)", lambda m: _count(m.out_of_bed)),
        ("Light sleep", lambda m: _minutes(m.light_min)),
        ("Light, % of total sleep", lambda m: _percent(m.light_pct)),
        ("Deep sleep", lambda m: _minutes(m.deep_min)),
        ("Deep, % of total sleep", lambda m: _percent(m.deep_pct)),
        ("REM sleep", lambda m: _minutes(m.rem_min)),
        ("REM, % of total sleep", lambda m: _percent(m.rem_pct)),
        ("Deep latency (from onset)", lambda m: _minutes(m.deep_latency_min)),
        ("REM latency (from onset)", lambda m: _minutes(m.rem_latency_min)),
        ("Final wake", lambda m: clock(m.final_wake_index)),
    )


def _metrics_table(
    metrics: SleepMetrics,
    truth_metrics: SleepMetrics | None,
    *,
    t0_s: float,
    tz: ZoneInfo,
    epoch_s: float,
) -> list[str]:
    """Return the metrics table, device and (if given) experts side by side."""
    nights = [metrics] if truth_metrics is None else [metrics, truth_metrics]
    heads = ["device", "experts"][: len(nights)]
    lines = ["Sleep metrics".ljust(_METRIC_LABEL_W) + "".join(h.rjust(_VALUE_W) for h in heads)]
    for name, fmt in _metric_rows(t0_s, tz, epoch_s):
        cells = "".join(fmt(m).rjust(_VALUE_W) for m in nights)
        lines.append(f"  {name}".ljust(_METRIC_LABEL_W) + cells)
    return lines


def _ratio_pct(v: float | None) -> str:
    return _NONE if v is None else f"{100.0 * v:.1f} %"


def _agreement_lines(agreement: Agreement) -> list[str]:
    """Return the agreement section: accuracy, kappa, per-stage table and confusion matrix."""
    kappa = _NONE if agreement.kappa is None else f"{agreement.kappa:.3f}"
    lines = [
        f"Agreement, device vs experts ({agreement.n_epochs} epochs, "
        f"{len(agreement.classes)} classes)",
        "  Accuracy".ljust(_METRIC_LABEL_W) + _ratio_pct(agreement.accuracy).rjust(_VALUE_W),
        "  Cohen's kappa".ljust(_METRIC_LABEL_W) + kappa.rjust(_VALUE_W),
        "",
        "  Stage".ljust(_STAGE_W) + "".join(h.rjust(_VALUE_W + 1) for h in _PER_STAGE_KEYS),
    ]
    for name in agreement.classes:
        scores = agreement.per_stage[name]
        cells = "".join(_ratio_pct(scores[key]).rjust(_VALUE_W + 1) for key in _PER_STAGE_KEYS)
        lines.append(f"  {name}".ljust(_STAGE_W) + cells)
    cell_w = max(8, *(len(c) + 2 for c in agreement.classes))
    lines += [
        "",
        "  Confusion matrix, epochs (rows = experts, columns = device)",
        "  experts \\ device".ljust(20) + "".join(c.rjust(cell_w) for c in agreement.classes),
    ]
    for name, row in zip(agreement.classes, agreement.confusion, strict=True):
        lines.append(f"  {name}".ljust(20) + "".join(str(v).rjust(cell_w) for v in row))
    return lines


def _first_present(alarm: Mapping[str, Any], *keys: str) -> Any:
    """Return the value of the first of `keys` that `alarm` holds and is not None, else None."""
    return next((alarm[k] for k in keys if alarm.get(k) is not None), None)


def _alarm_lines(alarm: Mapping[str, Any] | None, tz: ZoneInfo) -> list[str]:
    """Return the alarm section (see `format_report` for the keys of `alarm`)."""
    if alarm is None:
        return ["Alarm: none set"]
    set_s = alarm.get("set_s")
    set_at = _hhmm(float(set_s), tz) if set_s is not None else str(alarm.get("set") or _NONE)
    text = f"Alarm: set {set_at}"
    window_min = alarm.get("window_min")
    if window_min is None and alarm.get("window_s") is not None:
        window_min = float(alarm["window_s"]) / 60.0
    if window_min is not None:
        text += f", smart window {float(window_min):.0f} min"
    rang = _first_present(alarm, "rang_at_s", "rang_s")
    if rang is None:
        return [f"{text}, did not ring"]
    reason = alarm.get("reason")
    return [f"{text}, rang at {_hhmm(float(rang), tz)}" + (f" ({reason})" if reason else "")]


def _story_lines(story: Mapping[str, Any], tz: ZoneInfo) -> list[str]:
    """Return the night-story section from a session summary (`NightSummary.to_dict`)."""

    def at(key: str) -> str:
        t = story.get(key)
        return _NONE if t is None else _hhmm(float(t), tz)

    def row(label: str, value: str) -> str:
        return f"  {label}".ljust(_METRIC_LABEL_W) + value

    head = "The night (a nap)" if story.get("nap") else "The night"
    lines = [head, row("In bed", at("start_s")), row("Trying to sleep", at("intent_s"))]
    sol, unbroken = story.get("sleep_latency_min"), story.get("persistent_sleep_latency_min")
    asleep = f"after {_minutes(sol)}"
    if unbroken is not None:
        asleep += f"; 10 min unbroken after {_minutes(unbroken)}"
    lines.append(row("Fell asleep", _NONE if sol is None else asleep))
    for ep in story.get("out_of_bed_episodes") or ():
        when = _hhmm(float(ep["start_s"]), tz)
        lines.append(row("Out of bed", f"{when} for {_minutes(ep['duration_min'])}"))
    lines += [row("Final wake", at("wake_up_s")), row("Left the bed", at("end_s"))]
    if other := int(story.get("other_epochs") or 0):
        lines.append(
            row("Someone else's", f"{other * EPOCH_S / 60.0:.1f} min (partner or pet, not scored)")
        )
    return lines


def format_report(
    *,
    device_hyp: ArrayLike,
    truth_hyp: ArrayLike | None = None,
    t0_s: float,
    tz: ZoneInfo,
    metrics: SleepMetrics,
    truth_metrics: SleepMetrics | None,
    agreement: Agreement | None,
    alarm: Mapping[str, Any] | None,
    title: str,
    epoch_s: float = EPOCH_S,
    story: Mapping[str, Any] | None = None,
) -> str:
    """Write the morning report of one night.

    Sections, in order: the title; the device hypnogram and, if given, the experts' aligned
    under it (the shorter is padded with unscored epochs); the night's story if given (in bed,
    trying to sleep, fell asleep, each time out of bed, final wake, left the bed); the metrics
    table (device and experts side by side, with units); the agreement (accuracy, kappa,
    per-stage sensitivity, precision and specificity, confusion matrix); the alarm.

    Args:
        device_hyp: (n_epochs,) device hypnogram codes.
        truth_hyp: (m_epochs,) expert hypnogram codes starting at the same `t0_s`, or None.
        t0_s: Start of epoch 0 of both hypnograms, UTC epoch seconds.
        tz: Time zone the report shows clock times in.
        metrics: The device night's `sleep_metrics`.
        truth_metrics: The experts' `sleep_metrics`, or None.
        agreement: `agreement(truth_hyp, device_hyp)`, or None.
        alarm: None if no alarm was set, else a mapping (the names of `SmartAlarm`'s
            properties) with "set_s" (set time, UTC epoch seconds) or "set" (local "HH:MM"),
            optional "window_s" (s) or "window_min" (min) of the smart window, "rang_at_s" or
            "rang_s" (when it rang, UTC epoch seconds; None or missing if it did not ring) and
            "reason" ("smart" or "deadline").
        title: First line of the report.
        epoch_s: Epoch length of both hypnograms, seconds.
        story: The session's summary (`appliance.session.NightSummary.to_dict`), or None.

    Returns:
        The report, lines of at most `LINE_MAX` characters joined by newlines.

    Assumes:
        Both hypnograms and both metrics were computed with the same `t0_s` and `epoch_s`.
    """
    width = LINE_MAX - _PREFIX_W
    device = np.asarray(device_hyp, dtype=np.int64).ravel()
    charts = [device]
    if truth_hyp is not None:
        truth = np.asarray(truth_hyp, dtype=np.int64).ravel()
        n = max(device.size, truth.size)
        charts = [np.pad(h, (0, n - h.size), constant_values=UNSCORED) for h in (device, truth)]
    lines = [title[:LINE_MAX], ""]
    for hyp, label in zip(charts, ("device", "experts"), strict=False):
        chart = text_hypnogram(hyp, t0_s=t0_s, tz=tz, epoch_s=epoch_s, width=width, label=label)
        lines += [*chart.split("\n"), ""]
    if story is not None:
        lines += [*_story_lines(story, tz), ""]
    lines += _metrics_table(metrics, truth_metrics, t0_s=t0_s, tz=tz, epoch_s=epoch_s)
    lines.append("")
    if agreement is not None:
        lines += [*_agreement_lines(agreement), ""]
    lines += _alarm_lines(alarm, tz)
    logger.debug("morning report lines=%d", len(lines))
    return "\n".join(lines)


def format_eval(out: Mapping[str, Any]) -> str:
    """The text table of `appliance eval`: inputs, agreement, and device − PSG metric bias."""
    ag = Agreement(
        n_epochs=int(out["epochs"]),
        accuracy=out["accuracy"],
        kappa=out["kappa"],
        confusion=out["confusion"],
        per_stage=out["per_stage"],
        classes=tuple(out["stage_names"]),
    )
    inputs = out["inputs"]
    lines = [f"{out['nights']} nights, model {out['model']}"]
    if "path" in inputs:
        lines += [f"  inputs: {k} = {v}" for k, v in inputs.items()]
    lines += ["", *_agreement_lines(ag), "", "  Per night (device - PSG): bias [95 % limits]"]
    for name, unit in (("tst", "min"), ("se", "%"), ("sol", "min"), ("waso", "min")):
        m = out["metrics"][name]
        if m["bias"] is None:
            lines.append(f"  {name.upper():5s} -")
            continue
        lo = "-" if m["loa_low"] is None else f"{m['loa_low']:+.1f}"
        hi = "-" if m["loa_high"] is None else f"{m['loa_high']:+.1f}"
        lines.append(f"  {name.upper():5s} {m['bias']:+7.1f} {unit} [{lo}, {hi}] (n={m['n']})")
    lines += ["", "  record    epochs  accuracy  kappa"]
    for n in out["per_night"]:
        acc = "-" if n["accuracy"] is None else f"{n['accuracy']:.3f}"
        kap = "-" if n["kappa"] is None else f"{n['kappa']:.3f}"
        lines.append(f"  {n['record']:8s} {n['epochs']:7d}  {acc:>8s}  {kap:>5s}")
    return "\n".join(lines)
