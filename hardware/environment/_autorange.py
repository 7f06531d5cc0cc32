"""Auto-ranging over a light sensor's ladder of (gain, integration time) settings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Step", "next_step"]


@dataclass(frozen=True, slots=True)
class Step:
    """One setting of a light sensor's ladder.

    Attributes:
        gain: Analog gain, ×.
        integration_ms: Integration time, ms.
        max_count: Full-scale count of the channels at this setting.
    """

    gain: float
    integration_ms: float
    max_count: int

    @property
    def sensitivity(self) -> float:
        """Relative counts per lux (gain × integration time)."""
        return self.gain * self.integration_ms


def next_step(
    ladder: tuple[Step, ...], index: int, peak_count: int, *, low_count: int
) -> int | None:
    """Pick the setting for the next measurement, or None if this one is in range.

    Args:
        ladder: Settings ordered by increasing sensitivity.
        index: The setting that gave `peak_count`.
        peak_count: The largest channel count measured.
        low_count: Counts below which the reading is too coarse and a more sensitive setting is
            tried.

    Returns:
        The index to measure again with; None to keep this measurement. A saturated reading
        jumps to the least sensitive setting (its counts are no estimate of the light); a low
        one jumps to the most sensitive setting predicted to stay below half of full scale.
    """
    step = ladder[index]
    if peak_count >= int(0.95 * step.max_count):
        return 0 if index > 0 else None
    if peak_count >= low_count or index == len(ladder) - 1:
        return None
    best = index
    for j in range(index + 1, len(ladder)):
        predicted = max(peak_count, 1) * ladder[j].sensitivity / step.sensitivity
        if predicted <= 0.5 * ladder[j].max_count:
            best = j
    return best if best != index else None
