"""The TUI's own widgets."""

from __future__ import annotations

__all__: list[str] = []
