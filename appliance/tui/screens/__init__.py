"""The TUI's screens: Now, Last night, Alarms, Controls."""

from __future__ import annotations

__all__: list[str] = []
