"""The morning report as a picture: hypnogram, stage minutes and the bedroom's night, in a PNG.

matplotlib is an optional extra (`pip install 'appliance[report]'`), imported only here and only
when a PNG is asked for; without it the CLI says so on one line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appliance.errors import ApplianceError
from appliance.frames import EPOCH_S
from appliance.store import EnvironmentRow

__all__ = ["STAGE_COLOURS", "agg_pyplot", "write_png"]

log = logging.getLogger(__name__)

STAGE_COLOURS: Mapping[str, str] = {
    "wake": "#d08c3c",
    "rem": "#b0506a",
    "light": "#7a9a5a",
    "deep": "#4a6a8a",
    "absent": "#555555",
}
"""Stage colours shared with the TUI's hypnogram (warm and dim: it is read at night)."""

_LEVELS = {"absent": 4, "wake": 3, "rem": 2, "light": 1, "deep": 0}
_ENV = (("temperature", "°C"), ("humidity", "%RH"), ("illuminance", "lx"))


def agg_pyplot(option: str) -> Any:
    """matplotlib.pyplot on the Agg backend (no display).

    Raises:
        ApplianceError: matplotlib is not installed (one line naming `option` and the extra).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        hint = "pip install 'appliance[report]'"
        raise ApplianceError(f"{option} needs matplotlib: {hint}") from None
    return plt


def write_png(
    report: Mapping[str, Any],
    environment: Sequence[EnvironmentRow],
    path: Path,
    *,
    tz: str = "UTC",
) -> None:
    """Draw one night (`night_report`'s data dict) and its environment readings to `path`.

    Args:
        report: The night: ``start_s`` (UTC s), ``hypnogram`` (stage names per 30-s epoch),
            ``metrics`` (minutes per stage...), optionally ``epochs`` with their ``t_s``.
        environment: The bedroom's readings during the night (may be empty).
        path: The PNG to write.
        tz: Time zone of the time axis.

    Raises:
        ApplianceError: matplotlib is not installed, or the file cannot be written.
    """
    plt = agg_pyplot("--png")
    import matplotlib.dates as mdates

    zone = ZoneInfo(tz)
    hyp = list(report.get("hypnogram") or [])
    epochs = report.get("epochs") or []
    t0 = float(epochs[0]["t_s"]) if epochs else float(report.get("start_s") or 0.0)
    times = [datetime.fromtimestamp(t0 + i * EPOCH_S, zone) for i in range(len(hyp) + 1)]
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), gridspec_kw={"height_ratios": [3, 1.4, 2]})
    try:
        ax = axes[0]
        for i, stage in enumerate(hyp):
            level = _LEVELS.get(stage, 4)
            ax.fill_between(
                [times[i], times[i + 1]],
                level - 0.4,
                level + 0.4,
                color=STAGE_COLOURS.get(stage, "#555555"),
                linewidth=0,
            )
        ax.set_yticks(
            list(_LEVELS.values()), ["REM" if k == "rem" else k.capitalize() for k in _LEVELS]
        )
        hhmm = mdates.DateFormatter("%H:%M", tz=zone)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(hhmm)
        ax.set_title(f"Night of session {report.get('session', '?')}")
        ax.set_ylim(-0.6, 4.6)

        m = report.get("metrics") or {}
        names = ("light", "deep", "rem")
        minutes = [float(m.get(f"{n}_min") or 0.0) for n in names]
        axes[1].barh(
            [n.upper() if n == "rem" else n.capitalize() for n in names],
            minutes,
            color=[STAGE_COLOURS[n] for n in names],
        )
        axes[1].set_xlim(0, max(10.0, max(minutes) * 1.1))
        axes[1].set_xlabel(
            "minutes  (total sleep {:.0f} min, efficiency {})".format(
                float(m.get("tst_min") or 0.0),
                "-" if m.get("se_pct") is None else f"{m['se_pct']:.0f} %",
            )
        )

        ax = axes[2]
        drawn = False
        for i, (quantity, unit) in enumerate(_ENV):
            rows = [r for r in environment if r.quantity == quantity and r.value == r.value]
            if not rows:
                continue
            target = ax if i == 0 else ax.twinx()
            target.plot(
                [datetime.fromtimestamp(r.t_s, zone) for r in rows],
                [r.value for r in rows],
                label=f"{quantity} ({unit})",
                color=("#d08c3c", "#7a9a5a", "#b0b060")[i],
            )
            target.set_ylabel(unit)
            target.xaxis.set_major_formatter(hhmm)
            drawn = True
        if not drawn:
            ax.text(
                0.5,
                0.5,
                "no bedroom readings this night",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            ax.set_yticks([])
        ax.set_title("Bedroom")
        fig.tight_layout()
        try:
            fig.savefig(path, dpi=100)
        except OSError as e:
            raise ApplianceError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    log.info("wrote %s", path)
