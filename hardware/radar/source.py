"""The one interface every radar source implements (simulator, replay, real drivers)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from appliance.frames import RadarFrames

__all__ = ["RadarSource"]


@runtime_checkable
class RadarSource(Protocol):
    """A source of radar frames.

    `read` returns the next `n_frames` consecutive frames (fewer at the end of a finite source,
    None once it is exhausted). A real driver blocks until they have arrived (the daemon runs it in
    a thread); a simulator returns at once with frames stamped on its own timeline.
    """

    frame_rate_hz: float

    def start(self) -> None:
        """Power the sensor and start measuring."""
        ...

    def stop(self) -> None:
        """Stop measuring and power the sensor down (standby switches the radar off)."""
        ...

    def read(self, n_frames: int) -> RadarFrames | None:
        """Return up to `n_frames` next frames, or None when the source has no more."""
        ...
