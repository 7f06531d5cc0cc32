"""The evaluation's pictures: a hypnogram pair per night and a Bland–Altman plot per metric (PNG).

Menghini et al. (2021) ask for both beside the numbers: the hypnograms show *where* in the night
device and experts part ways (a single kappa hides it), and the Bland–Altman plot shows whether a
night metric's error grows with its size and how wide the limits of agreement are (Bland & Altman
1986: differences device − reference against the pair's mean, the bias and bias ± 1.96 SD).

matplotlib is the same optional dependency as the morning report's PNG (`appliance.report_png`,
the `report` extra), imported only when a plot is asked for. The stage colours are the report's.

References:
    Menghini L, Cellini N, Goldstone A, Baker FC, de Zambotti M (2021). A standardized framework
    for testing the performance of sleep-tracking technology: step-by-step guidelines and
    open-source code. Sleep 44(2):zsaa170. doi:10.1093/sleep/zsaa170

    Bland JM, Altman DG (1986). Statistical methods for assessing agreement between two methods
    of clinical measurement. Lancet 327(8476):307-310. doi:10.1016/S0140-6736(86)90837-8
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance.errors import ApplianceError
from appliance.evaluate import METRIC_UNITS, NightScore, night_metric_values
from appliance.frames import ABSENT, EPOCH_S, STAGE_NAMES, UNSCORED, Stage
from appliance.metrics import agreement, bland_altman
from appliance.report_png import STAGE_COLOURS, agg_pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["METRIC_LABELS", "bland_altman_png", "hypnogram_png", "write_plots"]

log = logging.getLogger(__name__)

METRIC_LABELS: dict[str, str] = {
    "tst": "Total sleep time",
    "se": "Sleep efficiency",
    "sol": "Sleep onset latency",
    "waso": "Wake after sleep onset",
    "wake_min": "Wake",
    "light_min": "Light sleep (N1+N2)",
    "deep_min": "Deep sleep (N3)",
    "rem_min": "REM sleep",
}
"""Plot titles of the `appliance.evaluate.METRIC_UNITS` keys."""

# Hypnogram rows, top to bottom as sleep deepens (the clinical convention, REM just under wake).
_LEVELS = {Stage.WAKE: 3, Stage.REM: 2, Stage.LIGHT: 1, Stage.DEEP: 0}
_LABELS = {Stage.WAKE: "Wake", Stage.REM: "REM", Stage.LIGHT: "Light", Stage.DEEP: "Deep"}
_LINE = "#333333"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _runs(codes: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, stop, code) of each run of equal codes, half-open epoch indices."""
    if codes.size == 0:
        return []
    edges = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate(([0], edges))
    stops = np.concatenate((edges, [codes.size]))
    return [(int(a), int(b), int(codes[a])) for a, b in zip(starts, stops, strict=True)]


def _draw_hypnogram(ax: Axes, codes: np.ndarray, hours_per_epoch: float, name: str) -> None:
    """One hypnogram on `ax`: a coloured bar per stage run on the stage's row, and a step line.

    `ABSENT` is drawn on the wake row in the absent colour (it counts as wake in every figure);
    `UNSCORED` is left blank.
    """
    for a, b, code in _runs(codes):
        if code == UNSCORED:
            continue
        stage = Stage.WAKE if code == ABSENT else Stage(code)
        colour = STAGE_COLOURS["absent" if code == ABSENT else STAGE_NAMES[stage]]
        x0 = a * hours_per_epoch
        ax.broken_barh(
            [(x0, (b - a) * hours_per_epoch)], (_LEVELS[stage] - 0.4, 0.8), color=colour, lw=0
        )
    # The step line makes each transition readable where a run is a single epoch wide.
    level = np.array(
        [
            _LEVELS[Stage.WAKE if c == ABSENT else Stage(c)] if c != UNSCORED else np.nan
            for c in codes
        ],
        float,
    )
    x = np.arange(codes.size + 1) * hours_per_epoch
    ax.stairs(level, x, baseline=None, color=_LINE, lw=0.6)
    ax.set_yticks(list(_LEVELS.values()), [_LABELS[s] for s in _LEVELS])
    ax.set_ylim(-0.6, 3.6)
    ax.set_ylabel(name)
    ax.grid(axis="x", color="#dddddd", lw=0.5)


def hypnogram_png(
    score: NightScore, path: Path, *, classes: int = 4, title: str = "", dpi: int = 80
) -> None:
    """Write the night's hypnogram pair: experts above, device below, on one time axis.

    Both are cropped to the experts' scored span (first to last scored epoch), so the axis is
    hours from the first scored epoch; the title carries the night's kappa and accuracy
    (`appliance.metrics.agreement`, `classes` classes), as in the JSON's ``per_night``.

    Args:
        score: The night (truth and device codes per 30-s epoch, aligned).
        path: The PNG to write.
        classes: 4 or 3: the classes the title's kappa and accuracy are computed over.
        title: A prefix for the title (e.g. the model's name).
        dpi: Resolution; the figure is 10 × 4 inches.

    Raises:
        ApplianceError: matplotlib missing, or the file cannot be written.
    """
    plt = agg_pyplot("--plots")
    from matplotlib.patches import Patch

    scored = np.flatnonzero(score.truth >= 0)
    lo, hi = (int(scored[0]), int(scored[-1]) + 1) if scored.size else (0, score.truth.size)
    truth, device = score.truth[lo:hi], score.device[lo:hi]
    ag = agreement(truth, device, classes=classes)
    kappa = "-" if ag.kappa is None else f"{ag.kappa:.2f}"
    acc = "-" if ag.accuracy is None else f"{ag.accuracy:.2f}"
    hours = EPOCH_S / 3600.0
    fig, axes = plt.subplots(2, 1, figsize=(10, 4), sharex=True)
    try:
        _draw_hypnogram(axes[0], truth, hours, "experts (PSG)")
        _draw_hypnogram(axes[1], device, hours, "device")
        axes[1].set_xlabel("hours from the first scored epoch")
        axes[1].set_xlim(0, max(truth.size, 1) * hours)
        head = f"{title}: " if title else ""
        axes[0].set_title(
            f"{head}{score.record} ({score.subject}) — kappa {kappa}, accuracy {acc} "
            f"({classes} classes, {ag.n_epochs} epochs)",
            fontsize=10,
        )
        handles = [Patch(color=STAGE_COLOURS[STAGE_NAMES[s]], label=_LABELS[s]) for s in _LEVELS]
        if np.any(device == ABSENT) or np.any(truth == ABSENT):
            handles.append(Patch(color=STAGE_COLOURS["absent"], label="absent (as wake)"))
        axes[0].legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            fontsize=8,
            frameon=False,
        )
        fig.tight_layout()
        _save(fig, path, dpi)
    finally:
        plt.close(fig)


def bland_altman_png(
    metric: str,
    records: Sequence[str],
    device: Sequence[float | None],
    truth: Sequence[float | None],
    path: Path,
    *,
    unit: str = "min",
    title: str = "",
    dpi: int = 80,
) -> None:
    """Write a Bland–Altman plot of one night metric: device − experts against their mean.

    The bias and 95 % limits are `appliance.metrics.bland_altman`'s (the JSON's figures); a
    night where either value is undefined is left out, as there.

    Args:
        metric: A `METRIC_LABELS` key (or any name: it is the title then).
        records: Night names, aligned with the values (each point is labelled with its night).
        device: Per-night device values.
        truth: Per-night expert values.
        path: The PNG to write.
        unit: The metric's unit ("min", "%").
        title: A prefix for the title.
        dpi: Resolution; the figure is 6 × 4.2 inches.

    Raises:
        ApplianceError: matplotlib missing, or the file cannot be written.
    """
    plt = agg_pyplot("--plots")
    ba = bland_altman(device, truth)
    keep = [
        (r, float(d), float(t))
        for r, d, t in zip(records, device, truth, strict=True)
        if d is not None and t is not None and np.isfinite(d) and np.isfinite(t)
    ]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    try:
        label = METRIC_LABELS.get(metric, metric)
        head = f"{title}: " if title else ""
        ax.set_title(f"{head}{label}, device − experts (n = {ba['n']})", fontsize=10)
        ax.axhline(0.0, color="#999999", lw=0.8, ls=":")
        if keep:
            mean = np.array([(d + t) / 2 for _, d, t in keep])
            diff = np.array([d - t for _, d, t in keep])
            ax.scatter(mean, diff, s=22, color=STAGE_COLOURS["deep"], zorder=3)
            for (r, _, _), x, y in zip(keep, mean, diff, strict=True):
                ax.annotate(r, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6)
        lines = (
            ("bias", ba["bias"], "-", STAGE_COLOURS["rem"]),
            ("+1.96 SD", ba["loa_high"], "--", STAGE_COLOURS["wake"]),
            ("−1.96 SD", ba["loa_low"], "--", STAGE_COLOURS["wake"]),
        )
        for name, value, style, colour in lines:
            if value is None:
                continue
            v = float(value)
            ax.axhline(v, color=colour, lw=1.2, ls=style)
            ax.annotate(
                f"{name} {v:+.1f} {unit}",
                (1.0, v),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                fontsize=7,
                color=colour,
            )
        ax.set_xlabel(f"mean of device and experts ({unit})")
        ax.set_ylabel(f"device − experts ({unit})")
        fig.tight_layout()
        _save(fig, path, dpi)
    finally:
        plt.close(fig)


def _save(fig: Any, path: Path, dpi: int) -> None:
    try:
        # No timestamp or software version in the file: a retrain that changes nothing writes
        # the same bytes.
        fig.savefig(path, dpi=dpi, metadata={"Software": None})
    except OSError as e:
        raise ApplianceError(f"cannot write {path}: {e.strerror or e}") from None
    log.info("wrote %s", path)


def write_plots(
    scores: Sequence[NightScore],
    out_dir: Path,
    *,
    classes: int = 4,
    title: str = "",
    dpi: int = 80,
) -> list[Path]:
    """Write `<record>_hypnogram.png` per night and `bland_altman_<metric>.png` per metric.

    The metrics are `appliance.evaluate.METRIC_UNITS` (TST, SE, SOL, WASO, minutes of wake,
    light, deep and rem), over the nights of `scores`.

    Args:
        scores: The nights, as `appliance.evaluate.evaluate` scores them.
        out_dir: The folder (created if missing).
        classes: 4 or 3: the classes of each night's kappa and accuracy in its title.
        title: A prefix of every title (e.g. "live model").
        dpi: Resolution of every PNG.

    Returns:
        The files written, hypnograms first.

    Raises:
        ApplianceError: matplotlib missing, or the folder or a file cannot be written.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ApplianceError(f"cannot create {out_dir}: {e.strerror or e}") from None
    written = []
    for s in scores:
        path = out_dir / f"{_SAFE.sub('_', s.record)}_hypnogram.png"
        hypnogram_png(s, path, classes=classes, title=title, dpi=dpi)
        written.append(path)
    for metric, (records, dev, ref) in night_metric_values(scores).items():
        path = out_dir / f"bland_altman_{metric}.png"
        bland_altman_png(
            metric, records, dev, ref, path, unit=METRIC_UNITS[metric], title=title, dpi=dpi
        )
        written.append(path)
    return written
