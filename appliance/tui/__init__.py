"""The Textual TUI (`appliance tui`): a client of the daemon's control API (docs/API.md)."""

from __future__ import annotations

__all__: list[str] = []
