"""The TUI's line to the daemon: a request connection that reconnects by itself.

Kept apart from the widgets (like toolong's watcher) so the screens only see results and one
`connected` flag; a daemon that restarts is found again on the next attempt.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from appliance.api_client import ApiError, AsyncClient, DaemonNotRunning
from appliance.errors import ApplianceError

__all__ = ["DaemonLink", "Outcome"]

log = logging.getLogger(__name__)

Outcome = tuple[bool, Any]
"""(True, result) or (False, a one-line message for the user)."""


class DaemonLink:
    """Requests to the daemon at `path`, connecting (again) when needed.

    Args:
        path: The daemon's socket.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._client: AsyncClient | None = None

    @property
    def connected(self) -> bool:
        """Whether a connection is open now."""
        return self._client is not None

    async def request(self, method: str, **params: Any) -> Outcome:
        """Send one request; never raises for the daemon's absence or refusal.

        Returns:
            (True, result), or (False, message) when the daemon refused the request, does not
            support it, or is not running (the next request tries to connect again).
        """
        try:
            if self._client is None:
                self._client = await AsyncClient.connect(self.path, timeout_s=2.0)
            return True, await self._client.call(method, **params)
        except ApiError as e:
            return False, e.message
        except DaemonNotRunning:
            self._client = None
            return False, "daemon not running — retrying"
        except ApplianceError as e:
            self._client = None
            return False, str(e)

    async def close(self) -> None:
        """Close the connection."""
        if self._client is not None:
            await self._client.close()
            self._client = None
