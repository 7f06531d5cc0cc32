"""The MQTT bridge to Home Assistant: discovery, retained states, commands and sleep events.

One aiomqtt client. `MqttBridge.run` connects, announces ``online`` (the LWT says ``offline``),
publishes the discovery configs (`appliance.ha_discovery`) and the current states, then follows the
daemon's bus and the subscribed command topics until the connection drops; it reconnects with
exponential back-off and jitter, forever. It never raises out (but for cancellation): a broker
that is down or disappears costs MQTT and nothing else. On every (re)connect and whenever Home
Assistant announces ``online`` on ``<discovery_prefix>/status``, discovery and the current states
are published again; nothing is replayed (the history is in the store).

States are computed from `Daemon.snapshot()` and published, retained, only when they change;
breathing and heart rate are rounded to whole breaths/beats per minute and published at most
once per `rate_interval_s` (the daemon's clock). The respiration waveform is never published.
Commands map to one `Controller` call each; a bad payload or a refused command is logged as a
warning and the entity's current state is published again (the "echo"), so Home Assistant shows
what really holds.

References:
    Home Assistant MQTT integration (discovery, availability, birth message):
    https://www.home-assistant.io/integrations/mqtt/
    aiomqtt: https://aiomqtt.bo3hm.com/
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import random
import re
import secrets
import ssl
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt

from appliance.control import LIGHT_MODES, CommandError, Controller
from appliance.errors import StoreError
from appliance.ha_discovery import (
    ENTITIES,
    EVENT_TYPE_OF_KIND,
    LIGHT_EFFECTS,
    DeviceInfo,
    Topics,
    discovery_messages,
)

if TYPE_CHECKING:
    from appliance.bus import Bus, Message, Subscription
    from appliance.config import MqttConfig
    from appliance.store import Store

__all__ = ["MqttBridge", "backoff_delay", "device_id"]

log = logging.getLogger(__name__)

_RATE_KEYS = frozenset({"breath_rate", "heart_rate"})
_LAST_NIGHT = "last_night"
_DEVICE_ID = re.compile(r"^[0-9a-f]{12}$")
_ASLEEP = frozenset({"light", "deep", "rem"})
_ENV_KEYS = frozenset({"temperature_c", "humidity_pct", "illuminance_lux"})
_SUMMARY_FIELDS = (
    "tib_min",
    "tst_min",
    "se_pct",
    "sol_min",
    "waso_min",
    "awakenings",
    "out_of_bed",
    "light_min",
    "deep_min",
    "rem_min",
    "light_pct",
    "deep_pct",
    "rem_pct",
    "deep_latency_min",
    "rem_latency_min",
)
"""The night's metrics that reach Home Assistant (no score: the numbers speak)."""


def device_id(store: Store, machine_id_path: Path = Path("/etc/machine-id")) -> str:
    """The device's stable id (12 hex digits), kept in the store's settings.

    The first time, it is derived from the machine id (hashed, so the machine id itself never
    leaves the device) or, without one, drawn at random; then it is stored as ``device_id``.
    """
    try:
        saved = store.setting("device_id")
    except StoreError as e:
        log.warning("could not read the device id: %s", e)
        saved = None
    if isinstance(saved, str) and _DEVICE_ID.match(saved):
        return saved
    try:
        machine = machine_id_path.read_text(encoding="utf-8").strip()
    except OSError:
        machine = ""
    new = (
        hashlib.sha256(f"appliance:{machine}".encode()).hexdigest()[:12]
        if machine
        else secrets.token_hex(6)
    )
    try:
        store.set_setting("device_id", new)
    except StoreError as e:
        log.warning("the device id %s is not kept: %s", new, e)
    return new


def backoff_delay(attempt: int, rng: random.Random, *, min_s: float, max_s: float) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0-based).

    Exponential (`min_s` * 2^attempt, capped at `max_s`) with jitter: a uniform draw in
    [half, all] of it, so that many devices behind one broker do not reconnect in step.
    """
    base = min(max_s, min_s * 2.0 ** min(attempt, 30))
    return base * (0.5 + 0.5 * rng.random())


def _onoff(text: str) -> bool:
    if text == "ON":
        return True
    if text == "OFF":
        return False
    raise ValueError("expected ON or OFF")


def _press(text: str, action: Callable[[], object]) -> object:
    if text != "PRESS":
        raise ValueError("expected PRESS")
    return action()


def _minutes(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError("expected a number of minutes") from None
    if not math.isfinite(v):
        raise ValueError("expected a number of minutes")
    return v


def _rounded(v: object, digits: int) -> str:
    if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
        return "None"  # HA's MQTT sensors read "None" as unknown
    r = round(float(v), digits)
    return str(int(r)) if digits == 0 else str(r)


def _onoff_state(v: object) -> str:
    return "None" if v is None else ("ON" if v else "OFF")


def night_document(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The last-night JSON document (retained): score-free metrics, rounded, plus its times."""
    metrics = summary.get("metrics")
    m: Mapping[str, Any] = metrics if isinstance(metrics, Mapping) else {}
    doc: dict[str, Any] = {}
    for k in _SUMMARY_FIELDS:
        v = m.get(k)
        doc[k] = round(float(v), 1) if isinstance(v, int | float) else None
    for k in ("start_s", "end_s"):
        v = summary.get(k)
        doc[k] = float(v) if isinstance(v, int | float) else None
    doc["interrupted"] = bool(summary.get("interrupted", False))
    return doc


def states(snap: Mapping[str, Any]) -> dict[str, str]:
    """Each entity's state payload, from `Daemon.snapshot()` (last night's apart)."""
    session = snap.get("session") or {}
    in_bed = session.get("state") == "in_bed"
    stage = snap.get("stage")
    env = snap.get("environment") or {}
    alarm = snap.get("alarm") or {}
    light = snap.get("light") or {}
    mode = light.get("mode", "off")
    light_state: dict[str, Any] = {"state": "OFF" if mode == "off" else "ON"}
    if mode != "off":
        light_state["effect"] = mode
        light_state["color_mode"] = "brightness"
        if light.get("brightness") is not None:
            light_state["brightness"] = light["brightness"]
    window = alarm.get("window_min")
    return {
        "presence": _onoff_state(snap.get("presence")),
        "in_bed": _onoff_state(in_bed),
        "asleep": _onoff_state(in_bed and stage in _ASLEEP),
        "stage": stage if isinstance(stage, str) else "None",
        "session": str(session.get("state", "None")),
        "breath_rate": _rounded(snap.get("breath_rate"), 0),
        "heart_rate": _rounded(snap.get("heart_rate"), 0),
        "temperature": _rounded(env.get("temperature_c"), 1),
        "humidity": _rounded(env.get("humidity_pct"), 0),
        "illuminance": _rounded(env.get("illuminance_lux"), 1),
        "next_alarm": snap.get("next_alarm") or "None",
        "alarm_time": str(alarm.get("time", "")),
        "alarm_enabled": _onoff_state(bool(alarm.get("enabled", False))),
        "smart_window": _rounded(window, 0) if window is not None else "None",
        "standby": _onoff_state(bool(snap.get("standby"))),
        "light": json.dumps(light_state, sort_keys=True),
    }


class MqttBridge:
    """The daemon's one MQTT client (a supervised daemon task).

    Args:
        cfg: The `[mqtt]` configuration.
        bus: The daemon's bus (followed from `run`'s start).
        controller: Every command goes through it.
        snapshot: `Daemon.snapshot`, the source of every state.
        device_id: The stable device id (`device_id`).
        rng: Jitter of the back-off (injected for tests).
        reconnect_min_s: First back-off delay, seconds (> 0).
        reconnect_max_s: Longest back-off delay, seconds.
        rate_interval_s: Shortest interval between breathing/heart-rate updates, seconds of the
            daemon's clock.
    """

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        bus: Bus,
        controller: Controller,
        snapshot: Callable[[], dict[str, Any]],
        device_id: str,
        rng: random.Random | None = None,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 300.0,
        rate_interval_s: float = 60.0,
    ) -> None:
        if not 0 < reconnect_min_s <= reconnect_max_s:
            raise ValueError("need 0 < reconnect_min_s <= reconnect_max_s")
        self._cfg = cfg
        self._bus = bus
        self._controller = controller
        self._snapshot = snapshot
        self._device = DeviceInfo(device_id)
        self._topics = Topics(cfg.base_topic, cfg.discovery_prefix)
        self._rng = rng or random.Random()
        self._min_s = reconnect_min_s
        self._max_s = reconnect_max_s
        self._rate_s = rate_interval_s
        self._sent: dict[str, str] = {}
        self._rate_t: dict[str, float] = {}
        self._last_night: dict[str, Any] | None = None
        self._live: dict[str, Any] = {}
        """The latest live values from the bus (ahead of, or equal to, the snapshot's)."""
        self._commands: dict[str, Callable[[str], object]] = {
            self._topics.command(spec.key): self._handler(spec.key)
            for spec in ENTITIES
            if spec.command
        }
        self._key_of = {self._topics.command(s.key): s.key for s in ENTITIES if s.command}
        self.connections = 0
        """Successful connections so far."""

    # -- commands: one Controller call each --------------------------------------------------
    def _handler(self, key: str) -> Callable[[str], object]:
        c = self._controller
        handlers: dict[str, Callable[[str], object]] = {
            "alarm_time": lambda t: c.set_alarm_time(t.strip()),
            "alarm_enabled": lambda t: c.set_alarm_enabled(_onoff(t)),
            "smart_window": lambda t: c.set_smart_window(_minutes(t)),
            "snooze": lambda t: _press(t, c.snooze),
            "dismiss": lambda t: _press(t, c.dismiss),
            "standby": lambda t: c.set_standby(_onoff(t)),
            "light": lambda t: c.set_light(*self._light_command(t)),
        }
        return handlers[key]

    def _light_command(self, text: str) -> tuple[str, int | None]:
        """(mode, brightness) from a JSON-schema light command."""
        try:
            cmd = json.loads(text)
        except (ValueError, RecursionError):  # nesting past the recursion limit is bad JSON too
            raise ValueError("expected a JSON light command") from None
        if not isinstance(cmd, dict):
            raise ValueError("expected a JSON object")
        light = self._snapshot().get("light") or {}
        brightness = cmd.get("brightness", light.get("brightness"))
        if isinstance(brightness, float) and brightness.is_integer():
            brightness = int(brightness)
        state = cmd.get("state")
        if state == "OFF":
            return "off", brightness
        if state != "ON":
            raise ValueError("state must be ON or OFF")
        effect = cmd.get("effect")
        if effect is None:
            current = light.get("mode", "off")
            effect = current if current != "off" else LIGHT_EFFECTS[0]
        if effect not in LIGHT_MODES or effect == "off":
            raise ValueError(f"unknown effect {effect!r}; expected one of {list(LIGHT_EFFECTS)}")
        return str(effect), brightness

    # -- the connection -------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, publish and follow, reconnecting forever; returns only when cancelled."""
        sub = self._bus.subscribe(maxsize=1024)
        attempt = 0
        failing = False
        try:
            while True:
                before = self.connections
                try:
                    await self._session(sub)
                except aiomqtt.MqttError as e:
                    if self.connections > before:
                        attempt, failing = 0, False
                    if not failing:
                        log.warning(
                            "MQTT broker %s:%d unavailable (%s); retrying with back-off",
                            self._cfg.host,
                            self._cfg.port,
                            e,
                        )
                        failing = True
                    else:
                        log.debug("MQTT reconnect failed: %s", e)
                except (OSError, ValueError) as e:  # e.g. TLS set-up, a bad payload from us
                    log.error("MQTT session ended: %s: %s", e.__class__.__name__, e)
                    failing = True
                delay = backoff_delay(attempt, self._rng, min_s=self._min_s, max_s=self._max_s)
                attempt += 1
                # Real time on purpose: a broker is retried at a network's pace, not the clock's.
                await asyncio.sleep(delay)
        finally:
            sub.close()

    def _client(self) -> aiomqtt.Client:
        c = self._cfg
        return aiomqtt.Client(
            c.host,
            c.port,
            username=c.username or None,
            password=c.password or None,
            identifier=c.client_id or f"appliance-{self._device.device_id}",
            will=aiomqtt.Will(self._topics.availability, "offline", qos=1, retain=True),
            tls_context=ssl.create_default_context() if c.tls else None,
            keepalive=30,
            timeout=10.0,
        )

    async def _session(self, sub: Subscription) -> None:
        async with self._client() as client:
            self.connections += 1
            log.info("MQTT connected to %s:%d", self._cfg.host, self._cfg.port)
            try:
                for topic in (*self._commands, self._topics.ha_status):
                    await client.subscribe(topic, qos=1)
                while sub.get_nowait() is not None:
                    pass  # what happened while disconnected is in the store, not replayed
                await self._announce(client)
                await _first_of(self._read(client), self._follow(client, sub))
            except asyncio.CancelledError:
                # A clean stop: the broker sends no LWT for it, so say it ourselves.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        client.publish(self._topics.availability, "offline", qos=1, retain=True),
                        2.0,
                    )
                raise

    async def _announce(self, client: aiomqtt.Client) -> None:
        """Availability, discovery and every current state (forced)."""
        await client.publish(self._topics.availability, "online", qos=1, retain=True)
        for topic, payload in discovery_messages(self._device, self._topics):
            await client.publish(topic, json.dumps(payload), qos=1, retain=True)
        if self._last_night is None:
            try:
                nights = self._controller.nights(1)
            except CommandError as e:
                log.warning("last night not published: %s", e)
                nights = []
            if nights:
                self._last_night = night_document(nights[0]["summary"] or {})
        self._sent.clear()
        # The snapshot is current now; from here on, the bus carries the live values in order.
        snap = self._snapshot()
        self._live = {
            k: snap.get(k) for k in ("presence", "breath_rate", "heart_rate", "stage", "t_s")
        }
        self._live["session_state"] = (snap.get("session") or {}).get("state")
        self._live["environment"] = dict(snap.get("environment") or {})
        await self._sync(client, force=True)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            topic = str(msg.topic)
            raw = msg.payload
            if isinstance(raw, bytes | bytearray):
                text = bytes(raw).decode("utf-8", errors="replace")
            else:
                text = "" if raw is None else str(raw)
            if topic == self._topics.ha_status:
                if text == "online":
                    log.info("Home Assistant is online: publishing discovery and states")
                    await self._announce(client)
                continue
            if self.handle_command(topic, text) is None:
                continue
            await self._sync(client, force_keys=frozenset({self._key_of[topic]}))

    def handle_command(self, topic: str, text: str) -> bool | None:
        """Act on one message of a command topic; never raises for what a client sent.

        Args:
            topic: The message's topic.
            text: Its payload, decoded (invalid UTF-8 replaced).

        Returns:
            True if the command was carried out, False if it was rejected (logged, nothing
            changed), None if `topic` is not one of the bridge's command topics.
        """
        handler = self._commands.get(topic)
        if handler is None:
            return None
        key = self._key_of[topic]
        try:
            handler(text)
        except (CommandError, ValueError, TypeError) as e:
            log.warning("MQTT command %s=%r rejected: %s", key, text[:80], e)
            return False
        log.info("MQTT command %s=%r done", key, text[:80])
        return True

    async def _follow(self, client: aiomqtt.Client, sub: Subscription) -> None:
        async for msg in sub:
            if msg.topic == "event":
                await self._event(client, msg)
            elif msg.topic == "night":
                self._last_night = night_document(msg.data)
            self._note(msg)
            await self._sync(client)

    def _note(self, msg: Message) -> None:
        """Keep the live values a message carries.

        So states follow the bus in order even when the snapshot has moved on (a fast simulated
        night), and the rate limit counts the message's time.
        """
        d, live = msg.data, self._live
        if msg.topic == "second":
            live.update(
                presence=d.get("presence"),
                breath_rate=d.get("breath_rate"),
                heart_rate=d.get("heart_rate"),
                t_s=msg.t_s,
            )
        elif msg.topic == "epoch":
            live.update(stage=d.get("stage"), t_s=msg.t_s)
        elif msg.topic == "session":
            live["session_state"] = d.get("state")
        elif msg.topic == "environment":
            live["environment"] = {k: v for k, v in d.items() if k in _ENV_KEYS}
        elif msg.topic == "standby":
            # Standby closes the session; nothing is sensed until it ends.
            live["session_state"] = "standby" if d.get("on") else "monitoring"
            if d.get("on"):
                live.update(presence=None, breath_rate=None, heart_rate=None, stage=None)

    def _view(self) -> dict[str, Any]:
        snap = dict(self._snapshot())
        live = self._live
        for k in ("presence", "breath_rate", "heart_rate", "stage", "t_s"):
            if k in live:
                snap[k] = live[k]
        if live.get("session_state") is not None and not snap.get("standby"):
            snap["session"] = {**(snap.get("session") or {}), "state": live["session_state"]}
        if "environment" in live:
            snap["environment"] = {**(snap.get("environment") or {}), **live["environment"]}
        return snap

    async def _event(self, client: aiomqtt.Client, msg: Message) -> None:
        kind = str(msg.data.get("kind", ""))
        event_type = EVENT_TYPE_OF_KIND.get(kind)
        if event_type is None:
            return
        detail = msg.data.get("detail")
        payload: dict[str, Any] = {"event_type": event_type, "kind": kind, "t_s": msg.t_s}
        if isinstance(detail, Mapping):
            payload.update(
                {
                    k: v
                    for k, v in detail.items()
                    if k not in payload and isinstance(v, str | int | float | bool | None)
                }
            )
        await client.publish(self._topics.event, json.dumps(payload), qos=1, retain=False)

    async def _sync(
        self,
        client: aiomqtt.Client,
        *,
        force: bool = False,
        force_keys: frozenset[str] = frozenset(),
    ) -> None:
        """Publish (retained) every state that changed; `force`/`force_keys` republish anyway."""
        snap = self._view()
        now = float(snap.get("t_s") or 0.0)
        out = states(snap)
        if self._last_night is not None:
            out[_LAST_NIGHT] = json.dumps(self._last_night, sort_keys=True)
        for key, payload in out.items():
            topic = self._topics.state(key)
            again = force or key in force_keys
            if not again and self._sent.get(topic) == payload:
                continue
            recent = now - self._rate_t.get(key, -math.inf) < self._rate_s
            if key in _RATE_KEYS and not again and recent:
                continue
            await client.publish(topic, payload, qos=1, retain=True)
            self._sent[topic] = payload
            if key in _RATE_KEYS:
                self._rate_t[key] = now


async def _first_of(*aws: Awaitable[None]) -> None:
    """Run `aws` together until the first ends; cancel the others; re-raise its error."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        # Bounded: aiomqtt's message iterator can miss a cancellation until the client closes
        # (which the caller does next); a stop must never hang on it.
        await asyncio.wait(tasks, timeout=1.0)
    for t in done:
        exc = t.exception()
        if exc is not None:
            raise exc
