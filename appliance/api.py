"""The daemon's local control API: JSON lines on a Unix socket (the protocol is docs/API.md).

Requests are dispatched by a declared table (`METHODS`: request name -> `Controller` method and
its parameter schema), so a new command is one line. A name whose method the `Controller` does
not have (yet) gets a `not_supported` error reply. Nothing a client sends or fails to read can
crash or block the daemon:

- a request line is at most `MAX_LINE_BYTES`; a longer one gets `too_large` and the connection is
  closed (the rest of that line cannot be told from the next request);
- bad JSON, a wrong shape, an unknown method or a parameter of the wrong type get an error reply;
- each connection has a bounded outgoing queue; live events are dropped (not queued) when it is
  full, and a write that does not drain within `write_timeout_s` drops the client;
- at most `max_clients` connections at once; one more gets `busy` and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.api_client import MAX_LINE_BYTES
from appliance.bus import TOPICS, Bus
from appliance.control import CommandError, Controller

__all__ = ["METHODS", "ApiServer", "MethodSpec", "Param", "dispatch"]

log = logging.getLogger(__name__)

_SOCKET_MODE = 0o660  # the service's group may use it, nobody else
_OUT_QUEUE = 256


@dataclass(frozen=True, slots=True)
class Param:
    """One request parameter.

    Attributes:
        name: Its key in `params`.
        kind: Accepted JSON types: "bool", "int", "number", "str", "list", "object".
        required: Whether it must be present.
        nullable: Whether null is accepted.
    """

    name: str
    kind: str
    required: bool = True
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A request name's `Controller` method and its parameters (passed as keywords)."""

    method: str
    params: tuple[Param, ...] = ()


def _p(name: str, kind: str, *, required: bool = True, nullable: bool = False) -> Param:
    return Param(name, kind, required, nullable)


_ALARM_FIELDS = (
    _p("id", "int", required=False, nullable=True),
    _p("time", "str", required=False),
    _p("days", "list", required=False),
    _p("window_min", "number", required=False),
    _p("sunrise_min", "number", required=False),
    _p("sound", "str", required=False),
    _p("enabled", "bool", required=False),
)

METHODS: Mapping[str, MethodSpec] = {
    "status": MethodSpec("status"),
    "nights": MethodSpec("nights", (_p("limit", "int", required=False),)),
    "night": MethodSpec("night", (_p("session_id", "int", required=False, nullable=True),)),
    "set_standby": MethodSpec("set_standby", (_p("on", "bool"),)),
    "dismiss": MethodSpec("dismiss"),
    "snooze": MethodSpec("snooze"),
    "set_light": MethodSpec(
        "set_light", (_p("mode", "str"), _p("brightness", "number", required=False))
    ),
    "set_alarm_time": MethodSpec("set_alarm_time", (_p("time", "str"),)),
    "set_alarm_enabled": MethodSpec("set_alarm_enabled", (_p("enabled", "bool"),)),
    "set_smart_window": MethodSpec("set_smart_window", (_p("window_min", "number"),)),
    "alarm_list": MethodSpec("alarm_list"),
    "alarm_set": MethodSpec("alarm_set", _ALARM_FIELDS),
    "alarm_enable": MethodSpec("alarm_enable", (_p("id", "int"), _p("enabled", "bool"))),
    "alarm_skip": MethodSpec("alarm_skip", (_p("id", "int"),)),
    "alarm_delete": MethodSpec("alarm_delete", (_p("id", "int"),)),
}
"""Request name -> Controller method. `subscribe` and `methods` are the server's own."""

_KINDS: dict[str, Callable[[Any], bool]] = {
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _check_params(name: str, spec: MethodSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    known = {p.name: p for p in spec.params}
    if unknown := sorted(set(params) - set(known)):
        raise _Refused("bad_request", f"{name}: unknown parameter(s) {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for p in spec.params:
        if p.name not in params:
            if p.required:
                raise _Refused("bad_request", f"{name}: missing parameter {p.name!r}")
            continue
        v = params[p.name]
        if v is None and p.nullable:
            out[p.name] = None
        elif v is None or not _KINDS[p.kind](v):
            raise _Refused("bad_request", f"{name}: {p.name!r} must be of type {p.kind}")
        else:
            out[p.name] = v
    return out


def _available(controller: Controller) -> list[str]:
    return sorted(n for n, s in METHODS.items() if callable(getattr(controller, s.method, None)))


def dispatch(controller: Controller, request: Any) -> dict[str, Any]:
    """Answer one parsed request (anything but `subscribe`) with a reply dict.

    Never raises: every failure is an error reply. A `CommandError` is `failed`; anything else a
    command raises is logged and answered `internal`.
    """
    rid = request.get("id") if isinstance(request, dict) else None
    try:
        name, params = _shape(request)
        if name == "methods":
            return {"id": rid, "result": {"methods": [*_available(controller), "subscribe"]}}
        spec = METHODS.get(name)
        if spec is None:
            raise _Refused("unknown_method", f"unknown method {name!r}")
        fn = getattr(controller, spec.method, None)
        if not callable(fn):
            raise _Refused("not_supported", f"{name}: not supported by this daemon")
        kwargs = _check_params(name, spec, params)
        try:
            result = fn(**kwargs)
        except CommandError as e:
            raise _Refused("failed", str(e)) from None
        except Exception as e:
            log.exception("API method %s failed", name)
            raise _Refused("internal", f"{name}: internal error ({e.__class__.__name__})") from None
        return {"id": rid, "result": result}
    except _Refused as e:
        return {"id": rid, "error": {"code": e.code, "message": e.message}}


def _shape(request: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(request, dict):
        raise _Refused("bad_request", "a request is a JSON object")
    rid = request.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str)):
        raise _Refused("bad_request", "id must be an integer or a string")
    if unknown := sorted(set(request) - {"id", "method", "params"}):
        raise _Refused("bad_request", f"unknown key(s) {', '.join(unknown)}")
    name = request.get("method")
    if not isinstance(name, str):
        raise _Refused("bad_request", "method must be a string")
    params = request.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise _Refused("bad_request", "params must be an object")
    return name, params


def _encode(obj: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(obj), allow_nan=False, separators=(",", ":"))
    except TypeError as e:  # a command returned something JSON cannot carry: a bug, logged
        log.error("API reply not JSON-serialisable: %s", e)
        err = _error(obj.get("id"), "internal", "internal error (reply not serialisable)")
        text = json.dumps(err)
    return (text + "\n").encode()


def _finite(v: Any) -> Any:
    """NaN and infinities become null: strict JSON has no place for them."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Mapping):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    return v


class ApiServer:
    """Serves `controller` and `bus` on the Unix socket at `path`.

    Args:
        path: The socket file (its directory is created, mode 0750, if missing).
        controller: The daemon's commands.
        bus: The daemon's bus (for `subscribe`).
        max_clients: Connections served at once.
        write_timeout_s: A client whose socket does not drain in this long is dropped, seconds
            (real time: a stuck client is a real-world matter).
        event_queue: Unread events kept per subscriber (the oldest are dropped).
    """

    def __init__(
        self,
        path: Path,
        controller: Controller,
        bus: Bus,
        *,
        max_clients: int = 32,
        write_timeout_s: float = 5.0,
        event_queue: int = 256,
    ) -> None:
        self.path = path
        self._controller = controller
        self._bus = bus
        self.max_clients = max_clients
        self.write_timeout_s = write_timeout_s
        self.event_queue = event_queue
        self.clients = 0
        """Connections open now."""
        self.dropped_clients = 0
        """Clients dropped because they did not read."""
        self.served = 0
        """Requests answered since the start."""
        self._handlers: set[asyncio.Task[Any]] = set()

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until cancelled; the socket file is removed on the way out.

        Raises:
            OSError: the socket cannot be made (another daemon serves it, or no permission).
        """
        self._prepare_path()
        server = await asyncio.start_unix_server(self._client, str(self.path), limit=MAX_LINE_BYTES)
        try:
            os.chmod(self.path, _SOCKET_MODE)
            log.info("control API on %s", self.path)
            if on_ready is not None:
                on_ready()
            async with server:
                await server.serve_forever()
        finally:
            # Connections end with the server: none is left pending when the daemon stops.
            for task in tuple(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _prepare_path(self) -> None:
        parent = self.path.parent
        if not parent.exists():
            parent.mkdir(mode=0o750, parents=True)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise OSError(f"{self.path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # left by a daemon that died: nobody answers on it
            else:
                raise OSError(f"another daemon already serves {self.path}")
            finally:
                probe.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        out: asyncio.Queue[bytes | None] = asyncio.Queue(_OUT_QUEUE)
        if self.clients >= self.max_clients:
            writer.write(
                _encode({"id": None, "error": {"code": "busy", "message": "too many clients"}})
            )
            await self._close(writer)
            return
        self.clients += 1
        me = asyncio.current_task()
        if me is not None:
            self._handlers.add(me)
        sender = asyncio.create_task(self._send(writer, out), name="api-send")
        forwarder: asyncio.Task[None] | None = None
        try:
            while not sender.done():
                try:
                    line = await reader.readline()
                except ValueError:  # the line is longer than the limit
                    await self._put(
                        out,
                        sender,
                        _encode(
                            _error(
                                None,
                                "too_large",
                                f"a request line is at most {MAX_LINE_BYTES} bytes",
                            )
                        ),
                    )
                    break
                except OSError:
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                except (ValueError, UnicodeDecodeError, RecursionError):  # "[[[[…" too deep
                    await self._put(
                        out, sender, _encode(_error(None, "bad_request", "not valid JSON"))
                    )
                    continue
                if isinstance(request, dict) and request.get("method") == "subscribe":
                    reply, topics = self._subscription(request)
                    await self._put(out, sender, _encode(reply))
                    if "result" in reply:
                        if forwarder is not None:
                            forwarder.cancel()
                        forwarder = asyncio.create_task(
                            self._forward(topics, out), name="api-events"
                        )
                    continue
                self.served += 1
                await self._put(out, sender, _encode(dispatch(self._controller, request)))
        finally:
            if forwarder is not None:
                forwarder.cancel()
            if not sender.done():
                with contextlib.suppress(asyncio.QueueFull):
                    out.put_nowait(None)  # flush what is queued, then close
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(sender), self.write_timeout_s)
            sender.cancel()
            self.clients -= 1
            if me is not None:
                self._handlers.discard(me)
            await self._close(writer)

    async def _put(
        self, out: asyncio.Queue[bytes | None], sender: asyncio.Task[None], data: bytes
    ) -> None:
        # A client that sends without reading waits here, alone: its queue is full.
        while not sender.done():
            try:
                await asyncio.wait_for(out.put(data), 1.0)
                return
            except TimeoutError:
                continue

    def _subscription(
        self, request: dict[str, Any]
    ) -> tuple[dict[str, Any], frozenset[str] | None]:
        rid = request.get("id")
        params = request.get("params") or {}
        if not isinstance(params, dict) or set(params) - {"topics"}:
            return _error(rid, "bad_request", "subscribe takes only 'topics'"), None
        topics = params.get("topics")
        if topics is None:
            return {"id": rid, "result": {"topics": sorted(TOPICS)}}, None
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            return _error(rid, "bad_request", "topics must be a list of strings"), None
        if unknown := sorted(set(topics) - TOPICS):
            return _error(rid, "bad_request", f"unknown topic(s) {', '.join(unknown)}"), None
        return {"id": rid, "result": {"topics": sorted(set(topics))}}, frozenset(topics)

    async def _forward(
        self, topics: frozenset[str] | None, out: asyncio.Queue[bytes | None]
    ) -> None:
        sub = self._bus.subscribe(topics, maxsize=self.event_queue)
        try:
            async for msg in sub:
                line = _encode({"event": msg.topic, "t_s": msg.t_s, "data": msg.data})
                with contextlib.suppress(asyncio.QueueFull):
                    out.put_nowait(line)  # a full queue means a slow reader: it loses events
        finally:
            sub.close()

    async def _send(self, writer: asyncio.StreamWriter, out: asyncio.Queue[bytes | None]) -> None:
        while (data := await out.get()) is not None:
            try:
                writer.write(data)
                await asyncio.wait_for(writer.drain(), self.write_timeout_s)
            except TimeoutError:
                self.dropped_clients += 1
                log.warning("API client dropped: it did not read for %.0f s", self.write_timeout_s)
                writer.transport.abort()
                return
            except OSError:
                return  # the client left mid-reply: nothing to do

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def _error(rid: Any, code: str, message: str) -> dict[str, Any]:
    return {"id": rid, "error": {"code": code, "message": message}}
