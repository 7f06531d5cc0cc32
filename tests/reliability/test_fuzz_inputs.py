"""Bad input on every external interface, fuzzed with hypothesis: MQTT command payloads, control
API requests (parsed and raw on the socket) and A121 protocol frames.

For each: no exception escapes, no input hangs (every wait is bounded by an asyncio timeout, so
a hang fails the test instead of stalling it), a rejected input leaves the daemon's state as it
was, and a valid request afterwards still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_daemon import FakeRadar, _daemon
from test_mqtt import MOSQUITTO, Broker, _idle_daemon, _mqtt_cfg, _set, watching
from test_mqtt import _state as _mqtt_state

from appliance.api import METHODS, ApiServer, _encode, dispatch
from appliance.api_client import MAX_LINE_BYTES
from appliance.clock import VirtualClock
from appliance.config import parse_config
from appliance.control import Controller
from appliance.daemon import Daemon
from appliance.ha_discovery import ENTITIES, Topics
from appliance.mqtt import MqttBridge
from appliance.staging import Stager
from appliance.store import Store
from hardware.radar.a121_protocol import (
    ProtocolError,
    decode_frame,
    parse_header,
    parse_metadata,
    parse_result_info,
)

T = TypeVar("T")
T0 = 1_768_000_000.0
BOUND_S = 10.0
"""Longest any one input may take: generous, it only turns a hang into a failure."""
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

DEEP = b"[" * 100_000
"""Nesting deeper than Python's recursion limit: json.loads raises RecursionError on it."""

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)


def bounded(fn: Callable[[], T]) -> T:
    """Run `fn` in a worker thread, failing (not hanging) if it takes longer than BOUND_S."""

    async def go() -> T:
        return await asyncio.wait_for(asyncio.to_thread(fn), BOUND_S)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


@pytest.fixture()
def rig(stager: Stager) -> Iterator[tuple[Daemon, Store]]:
    d_path = Path(tempfile.mkdtemp(prefix="ap-fz-", dir="/tmp"))
    store = Store.open(d_path / "s.sqlite")
    cfg = parse_config({"alarm": {"time": "07:00"}, "mqtt": {"enabled": True, "host": "127.0.0.1"}})
    d, _ = _daemon(cfg, VirtualClock(T0), FakeRadar(None), store, stager, finite_source=False)
    yield d, store
    store.close()
    shutil.rmtree(d_path, ignore_errors=True)


def _state(d: Daemon, store: Store) -> tuple[Any, ...]:
    """Everything a command may change."""
    a = d.alarm.alarm
    return (
        d.standby,
        d.status.light_mode,
        d.status.light_brightness,
        tuple(store.alarms()),
        None if a is None else (a.state, a.set_s),
    )


# -- MQTT ---------------------------------------------------------------------------------------

_TOPICS = Topics("appliance", "homeassistant")
COMMAND_TOPICS = [_TOPICS.command(s.key) for s in ENTITIES if s.command]
_NEAR_VALID = st.sampled_from(
    [
        "ON",
        "OFF",
        "on",
        " ON",
        "PRESS",
        "press",
        "",
        "07:30",
        "7:30",
        "24:00",
        "23:60",
        "-1",
        "46",
        "1e999",
        "nan",
        "inf",
        "0x10",
        "٣",
        '{"state":"ON"}',
        '{"state":"ON","brightness":1e400}',
        '{"state":"ON","brightness":-3}',
        '{"state":"ON","brightness":"x"}',
        '{"state":"ON","effect":[1]}',
        '{"state":"ON","effect":"sunrise"}',
        '{"state":"OFF","brightness":true}',
        "[]",
        "null",
    ]
)
_PAYLOADS = (
    st.binary(max_size=400).map(lambda b: b.decode("utf-8", errors="replace"))
    | st.text(max_size=200)
    | _NEAR_VALID
    | _json.map(json.dumps)
)


def _bridge(d: Daemon) -> MqttBridge:
    return MqttBridge(
        d.cfg.mqtt, bus=d.bus, controller=Controller(d), snapshot=d.snapshot, device_id="fuzz"
    )


@FUZZ
@given(topic=st.sampled_from(COMMAND_TOPICS), payload=_PAYLOADS)
@example(topic=_TOPICS.command("light"), payload=DEEP.decode())
@example(topic=_TOPICS.command("light"), payload="\udcff" * 10)
@example(topic=_TOPICS.command("alarm_time"), payload="\x00" * 70_000)
def test_mqtt_commands_never_raise_and_a_rejection_changes_nothing(
    rig: tuple[Daemon, Store], topic: str, payload: str
) -> None:
    d, store = rig
    bridge = _bridge(d)
    before = _state(d, store)
    done = bounded(lambda: bridge.handle_command(topic, payload))
    assert done in (True, False)
    if not done:
        assert _state(d, store) == before, (topic, payload)


def test_mqtt_a_valid_command_works_after_garbage(rig: tuple[Daemon, Store]) -> None:
    d, _ = rig
    bridge = _bridge(d)
    for topic in COMMAND_TOPICS:
        for junk in ("\ufffd\ufffd", DEEP.decode(), "{", "ON\x00"):
            bridge.handle_command(topic, junk)
    assert bridge.handle_command(_TOPICS.command("standby"), "ON") is True
    assert d.standby
    assert bridge.handle_command(_TOPICS.command("alarm_time"), "06:45") is True
    assert Controller(d).main_alarm()["time"] == "06:45"
    assert bridge.handle_command("appliance/not_a_command/set", "ON") is None


@pytest.mark.skipif(
    not Path(MOSQUITTO).exists(), reason="mosquitto not installed (install.sh --dev installs it)"
)
def test_mqtt_garbage_through_a_real_broker_costs_nothing(
    tmp_path: Path, stager: Stager, caplog: pytest.LogCaptureFixture
) -> None:
    """Invalid UTF-8, nesting past the recursion limit, 200 kB and empty payloads on every
    command topic of a real mosquitto: the session stays up and a valid command still works."""
    caplog.set_level(logging.INFO)
    broker = Broker(tmp_path)
    broker.start()
    try:
        d, _, store = _idle_daemon(tmp_path, stager, _mqtt_cfg(broker), time="07:00")

        async def go() -> None:
            # Only the states: the watcher itself would choke on the garbage it sees.
            async with watching(broker, ("appliance/+/state",)) as w:
                run = asyncio.create_task(d.run())
                await w.until(lambda: _mqtt_state("standby") in w.latest, "states")
                before = _state(d, store)
                for topic in COMMAND_TOPICS:
                    for junk in (b"\xff\xfe\x00garbage", DEEP, b"{" * 200_000, b""):
                        await w.client.publish(topic, junk, qos=1)
                await w.publish(_set("standby"), "ON")  # the one valid command, sent last
                await w.until(lambda: w.latest[_mqtt_state("standby")] == "ON", "standby")
                assert d.standby
                assert _state(d, store)[1:] == before[1:]  # nothing else changed
                d.stop()
                await asyncio.wait_for(run, BOUND_S)

        asyncio.run(asyncio.wait_for(go(), 60.0))
        store.close()
    finally:
        broker.stop()
    assert "task mqtt failed" not in caplog.text
    assert "MQTT session ended" not in caplog.text
    assert caplog.text.count("rejected") >= len(COMMAND_TOPICS)


# -- the control API: parsed requests -----------------------------------------------------------

_PARAM_NAMES = sorted({p.name for spec in METHODS.values() for p in spec.params})
_METHOD = st.sampled_from([*METHODS, "methods"]) | st.text(max_size=12)
_REQUEST = st.fixed_dictionaries(
    {"method": _METHOD},
    optional={
        "id": st.integers() | st.text(max_size=6) | st.none() | st.booleans() | st.floats(),
        "params": st.dictionaries(st.sampled_from(_PARAM_NAMES) | st.text(max_size=6), _json)
        | _json,
    },
)


@FUZZ
@given(request=_REQUEST | _json)
def test_api_dispatch_answers_everything_and_a_refusal_changes_nothing(
    rig: tuple[Daemon, Store], request: Any
) -> None:
    d, store = rig
    before = _state(d, store)
    reply = bounded(lambda: dispatch(Controller(d), request))
    assert ("result" in reply) != ("error" in reply)
    if "error" in reply:
        # "internal" would be a command that crashed on what it was given: a validation bug.
        assert reply["error"]["code"] != "internal", (request, reply)
        assert _state(d, store) == before, (request, reply)
    line = _encode(reply)
    assert line.endswith(b"\n") and json.loads(line) is not None


# -- the control API: raw bytes on the socket ---------------------------------------------------


async def _serve(d: Daemon, path: Path) -> tuple[ApiServer, asyncio.Task[None]]:
    server = ApiServer(path, Controller(d), d.bus, write_timeout_s=2.0)
    ready = asyncio.Event()
    task = asyncio.create_task(server.serve(on_ready=ready.set))
    await asyncio.wait_for(ready.wait(), BOUND_S)
    return server, task


async def _exchange(path: Path, chunks: list[bytes], *, read: bool = True) -> list[Any]:
    """Send `chunks`, half-close, and read every reply line until the server closes."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_unix_connection(str(path), limit=4 * MAX_LINE_BYTES), BOUND_S
    )
    replies: list[Any] = []
    try:
        for c in chunks:
            writer.write(c)
        await asyncio.wait_for(writer.drain(), BOUND_S)
        if writer.can_write_eof():
            writer.write_eof()
        while read and (line := await asyncio.wait_for(reader.readline(), BOUND_S)):
            replies.append(json.loads(line))
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server may close a connection that sent too much
    finally:
        writer.close()
    return replies


async def _status_works(path: Path) -> None:
    (reply,) = await _exchange(path, [b'{"id": 7, "method": "status"}\n'])
    assert reply["id"] == 7 and "result" in reply, reply


_CHUNK = (
    st.binary(max_size=300)
    | _REQUEST.map(lambda r: json.dumps(r).encode() + b"\n")
    | st.sampled_from([b"\n", b"\r\n", b"{", b'{"method": "status"', b"\xff\xfe\n", b"\x00\n"])
)


@settings(FUZZ, max_examples=40)
@given(chunks=st.lists(_CHUNK, max_size=8))
def test_api_socket_survives_raw_bytes_and_answers_the_next_client(
    rig: tuple[Daemon, Store], chunks: list[bytes]
) -> None:
    d, store = rig
    sock_dir = Path(tempfile.mkdtemp(prefix="ap-", dir="/tmp"))
    path = sock_dir / "api.sock"

    async def go() -> None:
        server, task = await _serve(d, path)
        try:
            before = _state(d, store)
            replies = await _exchange(path, chunks)
            sent = b"".join(chunks)
            complete = sum(1 for line in sent.split(b"\n")[:-1] if line.strip())
            # Every complete non-blank line got exactly one reply (a final partial line may too).
            assert complete <= len(replies) <= complete + 1, (chunks, replies)
            if all("error" in r for r in replies):
                assert _state(d, store) == before
            await _status_works(path)  # nothing lost: the next client is served
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            del server

    try:
        asyncio.run(go())
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_api_socket_huge_deep_and_partial_lines(rig: tuple[Daemon, Store]) -> None:
    d, _ = rig
    sock_dir = Path(tempfile.mkdtemp(prefix="ap-", dir="/tmp"))
    path = sock_dir / "api.sock"

    async def go() -> None:
        server, task = await _serve(d, path)
        try:
            huge = await _exchange(path, [b"x" * (MAX_LINE_BYTES + 100) + b"\n"])
            assert [r["error"]["code"] for r in huge] == ["too_large"]
            deep = await _exchange(path, [DEEP[: MAX_LINE_BYTES - 10] + b"\n"])
            assert [r["error"]["code"] for r in deep] == ["bad_request"], deep
            assert await _exchange(path, [b'{"id": 1, "method": "sta'], read=False) == []
            bad_utf8 = await _exchange(path, [b'{"method": "\xff\xfe"}\n'])
            assert [r["error"]["code"] for r in bad_utf8] == ["bad_request"]
            # One request dribbled a byte at a time is still one request.
            req = b'{"id": 3, "method": "status"}\n'
            dribbled = await _exchange(path, [req[i : i + 1] for i in range(len(req))])
            assert [r["id"] for r in dribbled] == [3]
            await _status_works(path)
            assert server.clients == 0 and not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(go())
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


# -- A121 protocol frames -----------------------------------------------------------------------

_HEADER = _json.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=600)


def _result_header(tick: object) -> bytes:
    return json.dumps({"result_info": [[{"tick": tick, "temperature": 30}]]}).encode()


@FUZZ
@given(
    line=_HEADER
    | st.builds(lambda h, cut: h[:cut], st.sampled_from([_result_header(5)]), st.integers(0, 60))
    | st.builds(lambda junk, h: junk + h, st.binary(max_size=200), st.just(_result_header(7)))
)
@example(line=DEEP)
@example(line=b'{"' * 30_000)
def test_a121_header_parsers_raise_only_protocol_errors(line: bytes) -> None:
    def parse() -> None:
        try:
            header = parse_header(line)
        except ProtocolError:
            return
        assert isinstance(header, dict)
        for parser in (parse_metadata, parse_result_info):
            with contextlib.suppress(ProtocolError):
                parser(header)

    bounded(parse)


@FUZZ
@given(payload=st.binary(max_size=2000), sweeps=st.integers(0, 40), points=st.integers(0, 40))
def test_a121_frames_decode_or_raise_a_protocol_error(
    payload: bytes, sweeps: int, points: int
) -> None:
    try:
        iq = decode_frame(payload, sweeps, points)
    except ProtocolError:
        assert len(payload) != sweeps * points * 4
        return
    assert iq.shape == (sweeps, points) and iq.dtype == np.complex64
    assert np.isfinite(iq).all()
