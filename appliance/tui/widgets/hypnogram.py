"""The hypnogram as a coloured chart: one row per stage, time across, resampled to the width."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from appliance.report_png import STAGE_COLOURS

__all__ = ["ROWS", "Hypnogram", "resample"]

ROWS: tuple[tuple[str, str], ...] = (("wake", "W"), ("rem", "R"), ("light", "L"), ("deep", "D"))
"""Stage rows top to bottom (the clinical order) and their labels."""

_PRIORITY = {"wake": 4, "rem": 3, "deep": 2, "light": 1, "absent": 0}


def resample(stages: Sequence[str], width: int) -> list[str]:
    """`stages` shrunk (or stretched) to `width` columns.

    A column spanning several epochs shows the one that matters most to a reader: wake over
    REM over deep over light (a short awakening must not vanish in a wide column).
    """
    n = len(stages)
    if n == 0 or width <= 0:
        return []
    out: list[str] = []
    for c in range(width):
        a = c * n // width
        b = max(a + 1, (c + 1) * n // width)
        out.append(max(stages[a:b], key=lambda s: _PRIORITY.get(s, 0)))
    return out


class Hypnogram(Widget):
    """Stages over time; `stages` is one stage name per 30-s epoch."""

    DEFAULT_CSS = """
    Hypnogram { height: 4; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stages: list[str] = []

    def show(self, stages: Sequence[str]) -> None:
        """Draw these stages."""
        self.stages = list(stages)
        self.refresh()

    def render(self) -> Text:
        """One line per stage row: a block where the night was in that stage."""
        width = max(1, self.size.width - 2)
        cols = resample(self.stages, width)
        text = Text(no_wrap=True)
        for i, (stage, label) in enumerate(ROWS):
            text.append(label + " ", style="dim")
            if not cols:
                text.append("no epochs" if i == 0 else "", style="dim")
            for s in cols:
                if s == stage:
                    text.append("█", style=STAGE_COLOURS[stage])
                elif s == "absent":
                    text.append("·" if i == len(ROWS) - 1 else " ", style=STAGE_COLOURS["absent"])
                else:
                    text.append(" ")
            if i < len(ROWS) - 1:
                text.append("\n")
        return text
