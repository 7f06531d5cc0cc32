"""Clients of the daemon's control API (docs/API.md): sync for the CLI, async for the TUI.

Both speak the one JSON-lines protocol over the daemon's Unix socket. A socket that is absent or
refuses the connection raises `DaemonNotRunning`; an error reply raises `ApiError` with its code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError

__all__ = [
    "MAX_LINE_BYTES",
    "SOCKET_NAME",
    "ApiError",
    "AsyncClient",
    "Client",
    "DaemonNotRunning",
    "default_socket_path",
    "find_socket",
    "socket_candidates",
]

SOCKET_NAME = "api.sock"
MAX_LINE_BYTES = 64 * 1024
"""The longest request line the daemon accepts, bytes (newline included)."""
_REPLY_LIMIT_BYTES = 16 * 1024 * 1024  # a year of nights' summaries fits easily


class DaemonNotRunning(ApplianceError, ConnectionError):
    """Nobody serves the control API at the socket.

    Attributes:
        path: The socket that was tried.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"the appliance daemon is not running (no socket at {path})")


class ApiError(ApplianceError):
    """The daemon answered a request with an error.

    Attributes:
        code: The error code (bad_request, unknown_method, not_supported, failed, ...).
        message: The daemon's one-line explanation.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def default_socket_path() -> Path:
    """Where the daemon serves its API when `[api] socket_path` is ''.

    $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=), /run/appliance as root, else a per-user
    directory for development: $XDG_RUNTIME_DIR/appliance, or /tmp/appliance-$UID.
    """
    if os.environ.get("RUNTIME_DIRECTORY"):
        return Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0]) / SOCKET_NAME
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/run/appliance") / SOCKET_NAME
    return _user_dir() / SOCKET_NAME


def _user_dir() -> Path:
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "appliance"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(f"/tmp/appliance-{uid}")


def socket_candidates() -> list[Path]:
    """Where a client looks for the socket, in order (the service's first, then a developer's)."""
    out: list[Path] = []
    for p in (
        default_socket_path(),
        Path("/run/appliance") / SOCKET_NAME,
        _user_dir() / SOCKET_NAME,
    ):
        if p not in out:
            out.append(p)
    return out


def find_socket(explicit: str | Path | None = None) -> Path:
    """The socket to connect to: `explicit` if given, else the first candidate that exists."""
    if explicit:
        return Path(explicit)
    candidates = socket_candidates()
    for p in candidates:
        if p.exists():
            return p
    return candidates[0]


def _request_line(req_id: int, method: str, params: dict[str, Any]) -> bytes:
    return (json.dumps({"id": req_id, "method": method, "params": params}) + "\n").encode()


def _result(reply: dict[str, Any]) -> Any:
    if "error" in reply:
        err = reply["error"] if isinstance(reply["error"], dict) else {}
        raise ApiError(str(err.get("code", "failed")), str(err.get("message", "error")))
    return reply.get("result")


class Client:
    """A blocking client (the CLI's).

    Args:
        path: The daemon's socket.
        timeout_s: How long to wait for the connection and for each reply, seconds.

    Raises:
        DaemonNotRunning: nobody listens at `path`.
    """

    def __init__(self, path: str | Path, *, timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout_s)
        try:
            self._sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            self._sock.close()
            raise DaemonNotRunning(self.path) from None
        except PermissionError:
            self._sock.close()
            raise ApplianceError(
                f"no permission to use {self.path} (join the appliance service's group)"
            ) from None
        self._buf = b""
        self._next_id = 0

    def call(self, method: str, **params: Any) -> Any:
        """Send one request and return its result.

        Raises:
            ApiError: the daemon replied with an error.
            DaemonNotRunning: the daemon went away mid-request.
            ApplianceError: no reply within the timeout.
        """
        self._next_id += 1
        rid = self._next_id
        try:
            self._sock.sendall(_request_line(rid, method, params))
            while True:
                reply = json.loads(self._readline())
                if isinstance(reply, dict) and reply.get("id") == rid:
                    return _result(reply)
        except TimeoutError:
            raise ApplianceError(f"the daemon did not answer {method!r} in time") from None
        except (BrokenPipeError, ConnectionResetError):
            raise DaemonNotRunning(self.path) from None

    def _readline(self) -> bytes:
        while b"\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise DaemonNotRunning(self.path)
            self._buf += chunk
            if len(self._buf) > _REPLY_LIMIT_BYTES:
                raise ApplianceError("reply too long")
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """An asyncio client (the TUI's): requests on one connection, a subscription on another.

    Use `await AsyncClient.connect(path)`. Calls are serialised on the connection.
    """

    def __init__(
        self, path: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.path = path
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._next_id = 0

    @classmethod
    async def connect(cls, path: str | Path, *, timeout_s: float = 5.0) -> AsyncClient:
        """Open a connection.

        Raises:
            DaemonNotRunning: nobody listens at `path` (or it did not accept in time).
        """
        p = Path(path)
        reader, writer = await _open(p, timeout_s)
        return cls(p, reader, writer)

    async def call(self, method: str, timeout_s: float = 10.0, **params: Any) -> Any:
        """Send one request and return its result.

        Raises:
            ApiError: the daemon replied with an error.
            DaemonNotRunning: the connection broke or the daemon did not answer in time.
        """
        async with self._lock:
            self._next_id += 1
            rid = self._next_id
            try:
                self._writer.write(_request_line(rid, method, params))
                await asyncio.wait_for(self._writer.drain(), timeout_s)
                while True:
                    line = await asyncio.wait_for(self._reader.readline(), timeout_s)
                    if not line:
                        raise DaemonNotRunning(self.path)
                    reply = json.loads(line)
                    if isinstance(reply, dict) and reply.get("id") == rid:
                        return _result(reply)
            except (TimeoutError, OSError, ValueError):
                await self.close()
                raise DaemonNotRunning(self.path) from None

    async def close(self) -> None:
        """Close the connection (quietly if it is already broken)."""
        self._writer.close()
        with contextlib.suppress(OSError, RuntimeError):
            await self._writer.wait_closed()

    @staticmethod
    async def subscribe(
        path: str | Path, topics: Collection[str] | None = None, *, timeout_s: float = 5.0
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream the daemon's bus events (`{"event", "t_s", "data"}` dicts) until it goes away.

        Raises:
            DaemonNotRunning: at connection, or when the stream ends.
            ApiError: the daemon refused the subscription (unknown topics).
        """
        p = Path(path)
        reader, writer = await _open(p, timeout_s)
        try:
            params: dict[str, Any] = {} if topics is None else {"topics": sorted(topics)}
            writer.write(_request_line(1, "subscribe", params))
            await writer.drain()
            while True:
                try:
                    line = await reader.readline()
                except (OSError, ValueError):
                    line = b""
                if not line:
                    raise DaemonNotRunning(p)
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    continue
                if msg.get("id") == 1:
                    _result(msg)  # raises on a refused subscription
                elif "event" in msg:
                    yield msg
        finally:
            writer.close()
            with contextlib.suppress(OSError, RuntimeError):
                await writer.wait_closed()


async def _open(p: Path, timeout_s: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(
            asyncio.open_unix_connection(str(p), limit=_REPLY_LIMIT_BYTES), timeout_s
        )
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError, TimeoutError):
        raise DaemonNotRunning(p) from None
    except PermissionError:
        raise ApplianceError(
            f"no permission to use {p} (join the appliance service's group)"
        ) from None
