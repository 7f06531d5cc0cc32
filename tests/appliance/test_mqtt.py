"""The MQTT bridge against a real mosquitto on 127.0.0.1, watched by a real subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path

import aiomqtt
import pytest
import synthetic
from test_daemon import REPO, UTC, FakeRadar, _daemon

from appliance.alarm import next_occurrence
from appliance.clock import VirtualClock
from appliance.config import ConfigError, parse_config
from appliance.control import Controller
from appliance.daemon import Daemon
from appliance.ha_discovery import ENTITIES, EVENT_TYPES, STAGE_OPTIONS
from appliance.mqtt import MqttBridge, backoff_delay, device_id
from appliance.staging import Stager
from appliance.store import Store

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
T0 = datetime(2026, 1, 12, 22, 0, tzinfo=UTC).timestamp()
WAIT_S = 15.0
"""Generous: waits end as soon as the condition holds."""

pytestmark = pytest.mark.skipif(
    not Path(MOSQUITTO).exists(), reason="mosquitto not installed (install.sh --dev installs it)"
)


# -- a real broker ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A mosquitto on 127.0.0.1:`port` with a temporary config; optionally a password file."""

    def __init__(self, tmp: Path, *, users: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.users = users
        self.conf = tmp / f"mosquitto-{self.port}.conf"
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr"]
        if os.geteuid() == 0:
            lines.append("user root")  # as root it would drop to "mosquitto", locked out of tmp
        if users:
            pw = tmp / f"passwd-{self.port}"
            for i, (user, password) in enumerate(users.items()):
                flags = ["-b", "-c"] if i == 0 else ["-b"]
                subprocess.run([PASSWD, *flags, str(pw), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "mosquitto exited at start"
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.02)
        raise AssertionError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5.0)
        self.proc = None


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture()
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture()
def password_broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path, users={"sleeper": "s3cret", "ha": "ha-pass"})
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


# -- a real subscriber ------------------------------------------------------------------------


class Watcher:
    """Subscribes to everything under `topics` and keeps what arrives."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[str, str, bool]] = []
        self.latest: dict[str, str] = {}

    async def pump(self) -> None:
        async for m in self.client.messages:
            raw = m.payload
            text = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw or "")
            self.messages.append((str(m.topic), text, bool(m.retain)))
            self.latest[str(m.topic)] = text

    def seen(self, topic: str) -> list[str]:
        return [p for t, p, _ in self.messages if t == topic]

    async def until(self, cond: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; latest={self.latest}")
            await asyncio.sleep(0.02)

    async def publish(self, topic: str, payload: str) -> None:
        await self.client.publish(topic, payload, qos=1)


@contextlib.asynccontextmanager
async def watching(
    broker: Broker, topics: tuple[str, ...] = ("appliance/#", "homeassistant/#"), **auth: str
) -> AsyncIterator[Watcher]:
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, identifier=f"watcher-{random.random()}", **auth
    ) as client:
        w = Watcher(client)
        for t in topics:
            await client.subscribe(t, qos=1)
        task = asyncio.create_task(w.pump())
        try:
            yield w
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


def _mqtt_cfg(broker: Broker, **extra: object) -> dict[str, object]:
    return {"enabled": True, "host": "127.0.0.1", "port": broker.port, **extra}


def _idle_daemon(
    tmp_path: Path, stager: Stager, mqtt: dict[str, object], **alarm: object
) -> tuple[Daemon, VirtualClock, Store]:
    """A daemon whose radar has nothing to give: the alarm and MQTT run, the clock stands."""
    cfg = parse_config({"session": {"start_after_s": 60.0}, "alarm": alarm, "mqtt": mqtt})
    clock = VirtualClock(T0)
    store = Store.open(tmp_path / "s.sqlite")
    d, _ = _daemon(cfg, clock, FakeRadar(None), store, stager, finite_source=False)
    return d, clock, store


def _state(key: str) -> str:
    return f"appliance/{key}/state"


def _set(key: str) -> str:
    return f"appliance/{key}/set"


# -- pure parts -------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, rng, min_s=1.0, max_s=60.0) for n in range(12)]
    for n, d in enumerate(delays):
        base = min(60.0, 2.0**n)
        assert base / 2 <= d <= base
    assert len({round(d, 6) for d in delays[8:]}) == 4  # capped, but jittered apart
    again = [backoff_delay(n, random.Random(7), min_s=1.0, max_s=60.0) for n in range(1)]
    assert again[0] == delays[0]  # the injected random makes it reproducible


def test_mqtt_config_is_off_by_default_and_validated() -> None:
    assert parse_config({}).mqtt.enabled is False
    cfg = parse_config({"mqtt": {"enabled": True, "host": "broker.lan", "username": "u"}})
    assert cfg.mqtt.port == 1883 and cfg.mqtt.discovery_prefix == "homeassistant"
    for bad, key in (
        ({"port": 0}, "mqtt.port"),
        ({"base_topic": "a/#"}, "mqtt.base_topic"),
        ({"discovery_prefix": "/ha"}, "mqtt.discovery_prefix"),
        ({"password": "x"}, "mqtt"),
        ({"host": ""}, "mqtt.host"),
        ({"tls": "yes"}, "mqtt.tls"),
        ({"qos": 1}, "mqtt.qos"),
    ):
        with pytest.raises(ConfigError) as e:
            parse_config({"mqtt": bad})
        assert e.value.key == key, (bad, e.value)


def test_device_id_is_stable_and_kept_in_the_store(tmp_path: Path) -> None:
    mid = tmp_path / "machine-id"
    mid.write_text("0123456789abcdef0123456789abcdef\n", encoding="utf-8")
    with Store.open(tmp_path / "s.sqlite") as store:
        first = device_id(store, mid)
        mid.write_text("something else\n", encoding="utf-8")
        assert device_id(store, mid) == first  # the stored one wins
        assert store.setting("device_id") == first
        assert "0123456789abcdef" not in first  # hashed: the machine id itself never leaves
    with Store.open(tmp_path / "t.sqlite") as store:
        assert len(device_id(store, tmp_path / "none")) == 12  # no machine id: a random one


# -- discovery, commands and rejections -------------------------------------------------------

_REQUIRED = {
    "binary_sensor": {"state_topic"},
    "sensor": {"state_topic"},
    "text": {"command_topic", "state_topic"},
    "switch": {"command_topic", "state_topic"},
    "number": {"command_topic", "state_topic", "min", "max", "step"},
    "button": {"command_topic"},
    "light": {"command_topic", "state_topic", "schema"},
    "event": {"state_topic", "event_types"},
}


def test_discovery_commands_and_bad_payloads_against_a_real_broker(
    broker: Broker, tmp_path: Path, stager: Stager, caplog: pytest.LogCaptureFixture
) -> None:
    d, clock, store = _idle_daemon(tmp_path, stager, _mqtt_cfg(broker), time="07:00")

    async def go() -> None:
        async with watching(broker) as w:
            run = asyncio.create_task(d.run())
            await w.until(lambda: w.latest.get("appliance/availability") == "online", "online")
            await w.until(
                lambda: len({t for t in w.latest if t.endswith("/config")}) >= len(ENTITIES),
                "discovery",
            )
            await w.until(lambda: _state("light") in w.latest, "states")

            # Every discovery payload: retained (a late subscriber gets it), required keys, one
            # device, availability.
            async with watching(broker) as late:
                await late.until(
                    lambda: (
                        len({t for t, _, r in late.messages if r and "/config" in t})
                        >= len(ENTITIES)
                    ),
                    "retained discovery",
                )
                await late.until(lambda: _state("light") in late.latest, "retained states")
                retained = {t for t, _, r in late.messages if r}
            found = {t: json.loads(p) for t, p, _ in late.messages if t.endswith("/config")}
            assert {_state(k) for k in ("presence", "stage", "alarm_time", "light")} <= retained
            assert len(found) == len(ENTITIES)
            uids = [p["unique_id"] for p in found.values()]
            assert len(set(uids)) == len(uids)
            devices = {json.dumps(p["device"], sort_keys=True) for p in found.values()}
            assert len(devices) == 1
            dev = found[next(iter(found))]["device"]
            assert dev["manufacturer"] == "open" and dev["sw_version"] and dev["identifiers"]
            for topic, p in found.items():
                component = topic.split("/")[1]
                assert _REQUIRED[component] <= p.keys(), (topic, p)
                assert p["availability_topic"] == "appliance/availability"
                assert p["name"]
            by_key = {t.split("/")[3]: p for t, p in found.items()}
            assert by_key["presence"]["device_class"] == "occupancy"
            assert by_key["stage"]["options"] == list(STAGE_OPTIONS)
            assert by_key["temperature"]["unit_of_measurement"] == "°C"
            assert by_key["next_alarm"]["device_class"] == "timestamp"
            assert by_key["sleep_event"]["event_types"] == list(EVENT_TYPES)
            assert by_key["light"]["schema"] == "json"
            assert all("waveform" not in json.dumps(p) for p in found.values())

            # Current states, retained.
            assert w.latest[_state("alarm_time")] == "07:00"
            assert w.latest[_state("alarm_enabled")] == "ON"
            assert w.latest[_state("standby")] == "OFF"
            assert w.latest[_state("session")] == "monitoring"
            armed = next_occurrence("07:00", UTC, T0)
            assert w.latest[_state("next_alarm")].startswith("2026-01-13T07:00:00")

            # Set the alarm time: the alarm task re-arms and the store keeps it.
            await w.publish(_set("alarm_time"), "06:30")
            await w.until(lambda: w.latest[_state("alarm_time")] == "06:30", "alarm time")
            await clock.run_until(clock.now() + 2.0)  # the alarm task's next tick re-reads
            assert d.alarm.next_ring_s == next_occurrence("06:30", UTC, T0) != armed
            main = store.alarm(0)  # the config's alarm, changed in the store
            assert main is not None and main.time == "06:30"
            await w.until(
                lambda: w.latest[_state("next_alarm")].startswith("2026-01-13T06:30"), "next"
            )

            # Bad payloads: a warning, the state echoed, no crash.
            n_echo = len(w.seen(_state("alarm_time")))
            for key, bad in (
                ("alarm_time", "25:99"),
                ("alarm_time", "7 o'clock"),
                ("smart_window", "ninety"),
                ("smart_window", "90"),
                ("standby", "MAYBE"),
                ("light", '{"state": "ON", "effect": "disco"}'),
                ("light", "not json"),
                ("dismiss", "PRESS"),  # nothing is ringing
                ("snooze", "PRESS"),
                ("alarm_enabled", "on"),
            ):
                before = len(w.seen(_state(key))) if key not in ("dismiss", "snooze") else 0
                await w.publish(_set(key), bad)
                if key not in ("dismiss", "snooze"):
                    await w.until(lambda k=key, b=before: len(w.seen(_state(k))) > b, "echo")
            assert len(w.seen(_state("alarm_time"))) >= n_echo + 2
            assert w.latest[_state("alarm_time")] == "06:30"
            assert w.latest[_state("smart_window")] == "30"
            assert w.latest[_state("standby")] == "OFF"
            assert store.alarm(0).window_min == 30.0 and not d.standby  # type: ignore[union-attr]
            rejected = [r for r in caplog.records if "rejected" in r.message]
            assert len(rejected) == 10 and all(r.levelno == logging.WARNING for r in rejected)
            assert not run.done()

            # Good commands still work after the bad ones.
            await w.publish(_set("smart_window"), "20")
            await w.until(lambda: w.latest[_state("smart_window")] == "20", "window")
            assert store.alarm(0).window_min == 20.0  # type: ignore[union-attr]
            await w.publish(_set("light"), '{"state": "ON", "effect": "night", "brightness": 40}')
            await w.until(lambda: '"night"' in w.latest[_state("light")], "light")
            assert json.loads(w.latest[_state("light")])["brightness"] == 40
            assert d.snapshot()["light"] == {"mode": "night", "brightness": 40}

            # Standby: the daemon goes to standby and the store keeps it.
            await w.publish(_set("standby"), "ON")
            await w.until(lambda: w.latest[_state("standby")] == "ON", "standby")
            assert d.standby and store.setting("standby") is True
            await w.until(lambda: w.latest[_state("session")] == "standby", "session standby")

            # Alarm off: nothing armed.
            await w.publish(_set("alarm_enabled"), "OFF")
            await clock.run_until(clock.now() + 2.0)
            await w.until(lambda: w.latest[_state("next_alarm")] == "None", "alarm off")
            assert d.alarm.next_ring_s is None
            assert not store.alarm(0).enabled  # type: ignore[union-attr]

            # Dismiss a ringing alarm: one set a minute from now, and the clock let run to it.
            await w.publish(_set("alarm_enabled"), "ON")
            await w.publish(_set("alarm_time"), "22:01")
            await w.until(lambda: store.alarm(0).time == "22:01", "stored")  # type: ignore[union-attr]
            await clock.run_until(clock.now() + 2.0)
            await w.until(lambda: d.alarm.next_ring_s == T0 + 60.0, "re-armed")
            await clock.run_until(T0 + 62.0)
            await w.until(
                lambda: any("alarm_alert_start" in p for p in w.seen("appliance/event")),
                "ringing event",
            )
            await w.publish(_set("dismiss"), "PRESS")
            await w.until(
                lambda: any("alarm_alert_dismiss" in p for p in w.seen("appliance/event")),
                "dismissed event",
            )
            alarm = d.alarm.alarm
            assert alarm is not None and alarm.state == "dismissed"
            events = [json.loads(p) for p in w.seen("appliance/event")]
            assert {e["event_type"] for e in events} <= set(EVENT_TYPES)
            assert all(not r for t, _, r in w.messages if t == "appliance/event")

            # Home Assistant's birth message: discovery and states again.
            n_configs = sum(1 for t, _, _ in w.messages if t.endswith("/config"))
            await w.publish("homeassistant/status", "online")
            await w.until(
                lambda: (
                    sum(1 for t, _, _ in w.messages if t.endswith("/config"))
                    >= n_configs + len(ENTITIES)
                ),
                "re-published discovery",
            )
            d.stop()
            done, _ = await asyncio.wait({run}, timeout=WAIT_S)
            if not done:
                for t in asyncio.all_tasks():
                    t.print_stack(limit=4)
                raise AssertionError("the daemon did not stop")
            # A clean stop says offline itself.
            await w.until(lambda: w.latest["appliance/availability"] == "offline", "offline")

    try:
        with caplog.at_level(logging.INFO):
            asyncio.run(asyncio.wait_for(go(), 60.0))
    finally:
        store.close()


# -- a simulated night ------------------------------------------------------------------------


def _bridge(d: Daemon, cfg: dict[str, object], **kw: float) -> MqttBridge:
    mqtt = parse_config({"mqtt": cfg}).mqtt
    return MqttBridge(
        mqtt,
        bus=d.bus,
        controller=Controller(d),
        snapshot=d.snapshot,
        device_id="0123456789ab",
        rng=random.Random(3),
        **kw,
    )


def test_a_simulated_night_reaches_home_assistant(
    own_broker: Broker, tmp_path: Path, stager: Stager
) -> None:
    broker = own_broker
    fr = synthetic.frames(300.0, absent=((200.0, 300.0),), t0_s=T0)
    clock = VirtualClock(T0)
    cfg = parse_config({"session": {"start_after_s": 60.0}})
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _ = _daemon(cfg, clock, FakeRadar(fr), store, stager)
        bridge = _bridge(d, _mqtt_cfg(broker, base_topic="appliance"))

        async def go() -> None:
            async with watching(broker) as w:
                task = asyncio.create_task(bridge.run())
                await w.until(lambda: w.latest.get("appliance/availability") == "online", "on")
                await w.until(lambda: _state("light") in w.latest, "first states")
                await asyncio.wait_for(d.run(), WAIT_S)
                await w.until(lambda: _state("last_night") in w.latest, "last night")
                await w.until(lambda: w.latest[_state("presence")] == "OFF", "empty bed")
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await w.until(lambda: w.latest["appliance/availability"] == "offline", "offline")
                return_w.append(w)

        return_w: list[Watcher] = []
        asyncio.run(asyncio.wait_for(go(), 60.0))
    (w,) = return_w
    assert "ON" in w.seen(_state("presence"))
    assert w.seen(_state("session"))[-1] == "monitoring" and "in_bed" in w.seen(_state("session"))
    assert "ON" in w.seen(_state("in_bed"))
    stages = set(w.seen(_state("stage")))
    assert stages - {"None"} and stages <= {*STAGE_OPTIONS, "None"}
    # Rates: whole numbers, at most one a minute (5 simulated minutes, +1 for the first one).
    rates = [r for r in w.seen(_state("breath_rate")) if r != "None"]
    assert rates and all(r.isdigit() and 4 <= int(r) <= 40 for r in rates)
    assert len(w.seen(_state("breath_rate"))) <= 7
    assert len(w.seen(_state("heart_rate"))) <= 7
    events = [json.loads(p) for p in w.seen("appliance/event")]
    types = [e["event_type"] for e in events]
    assert types[0] == "in_bed" and "sleep_tracking_stopped" in types
    night = json.loads(w.latest[_state("last_night")])
    (_, summary) = d.summaries[0]
    assert night["tst_min"] == round(summary.metrics.tst_min, 1)
    assert "score" not in night and "waveform" not in json.dumps(w.messages)
    # Only states are retained; events never.
    assert all(not r for t, _, r in w.messages if t == "appliance/event")


# -- the broker goes away and comes back; credentials -----------------------------------------


def test_the_bridge_survives_a_broker_restart_and_republishes(
    own_broker: Broker, tmp_path: Path, stager: Stager
) -> None:
    d, _, store = _idle_daemon(tmp_path, stager, {}, time="07:00")
    bridge = _bridge(d, _mqtt_cfg(own_broker), reconnect_min_s=0.05, reconnect_max_s=0.2)

    async def go() -> None:
        run = asyncio.create_task(d.run())
        task = asyncio.create_task(bridge.run())
        async with watching(own_broker) as w:
            await w.until(lambda: w.latest.get(_state("alarm_time")) == "07:00", "states")
        own_broker.stop()
        # MQTT is gone: the daemon, its commands and the alarm go on.
        await asyncio.sleep(0.5)
        Controller(d).set_alarm_time("06:15")
        Controller(d).set_standby(True)
        assert not task.done() and not run.done()
        own_broker.start()  # a fresh broker: no retained state left
        async with watching(own_broker) as w:
            await w.until(lambda: w.latest.get(_state("alarm_time")) == "06:15", "re-published")
            await w.until(lambda: w.latest.get(_state("standby")) == "ON", "standby state")
            assert w.latest["appliance/availability"] == "online"
            n = len({t for t in w.latest if t.endswith("/config")})
            assert n == len(ENTITIES)
        assert bridge.connections == 2
        task.cancel()
        d.stop()
        await asyncio.wait_for(run, WAIT_S)

    try:
        asyncio.run(asyncio.wait_for(go(), 60.0))
    finally:
        store.close()


def test_username_and_password_and_a_wrong_password_costs_only_mqtt(
    password_broker: Broker, tmp_path: Path, stager: Stager, caplog: pytest.LogCaptureFixture
) -> None:
    d, _, store = _idle_daemon(tmp_path, stager, {})
    good = _bridge(d, _mqtt_cfg(password_broker, username="sleeper", password="s3cret"))
    bad = _bridge(
        d,
        _mqtt_cfg(password_broker, username="sleeper", password="wrong", client_id="bad-one"),
        reconnect_min_s=0.05,
        reconnect_max_s=0.1,
    )

    async def go() -> None:
        tasks = [asyncio.create_task(good.run()), asyncio.create_task(bad.run())]
        async with watching(password_broker, username="ha", password="ha-pass") as w:
            await w.until(lambda: w.latest.get("appliance/availability") == "online", "online")
            await w.until(lambda: _state("standby") in w.latest, "states")
            await asyncio.sleep(0.5)  # the bad one retries several times meanwhile
        assert good.connections == 1 and bad.connections == 0
        assert not any(t.done() for t in tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        with caplog.at_level(logging.WARNING, logger="appliance.mqtt"):
            asyncio.run(asyncio.wait_for(go(), 60.0))
    finally:
        store.close()
    unavailable = [r for r in caplog.records if "unavailable" in r.message]
    assert len(unavailable) == 1  # one warning per outage, not one per attempt


# -- LWT: `appliance run` killed ---------------------------------------------------------------


def test_a_killed_daemon_goes_offline_through_its_last_will(broker: Broker, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[simulator]\nscene = "empty-room"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\n'
        f'port = {broker.port}\nbase_topic = "lwt"\n',
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("STATE_DIRECTORY", None)
    args = ["run", "--config", str(cfg), "--data-dir", str(tmp_path / "data"), "--speed", "50"]

    async def go() -> None:
        async with watching(broker, topics=("lwt/#", "homeassistant/#")) as w:
            proc = subprocess.Popen(
                [sys.executable, "-m", "appliance.cli", *args],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await w.until(lambda: w.latest.get("lwt/availability") == "online", "online", 30)
                await w.until(lambda: "lwt/standby/state" in w.latest, "states")
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=WAIT_S)
                await w.until(lambda: w.latest["lwt/availability"] == "offline", "the LWT")
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=5.0)

    asyncio.run(asyncio.wait_for(go(), 60.0))
