"""Home Assistant MQTT discovery: the device's entities as data, and their config payloads.

Pure: no client, no I/O. `ENTITIES` declares every entity once (component, name, device class,
unit...); `discovery_messages` turns the table into one retained config message per entity on
``<discovery_prefix>/<component>/<node_id>/<key>/config`` (per-entity discovery, which every Home
Assistant with MQTT discovery understands), all sharing one device block.

Topics under the configured base topic (see `Topics`): ``<base>/availability`` (online/offline,
the LWT), ``<base>/<key>/state`` (retained), ``<base>/<key>/set`` (commands, never retained),
``<base>/last_night/state`` (one JSON document read by every last-night sensor, and their
attributes) and ``<base>/event`` (sleep events, never retained).

Why `text` and not `time` for the alarm time: Home Assistant has a `time` entity platform, but its
MQTT integration has no `time` platform to discover (the home-assistant discussion "Add Time Entity
Support to MQTT Discovery" asks for one), so the alarm time is a `text` entity with an HH:MM
pattern, which HA checks in its UI; the daemon validates the command again.

References:
    Home Assistant, "MQTT" integration documentation, sections Discovery, Availability, and the
    platforms binary_sensor, sensor, text, switch, number, button, light (JSON schema) and event:
    https://www.home-assistant.io/integrations/mqtt/
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance import __version__

__all__ = [
    "ALARM_TIME_PATTERN",
    "ENTITIES",
    "EVENT_TYPES",
    "EVENT_TYPE_OF_KIND",
    "LIGHT_EFFECTS",
    "SESSION_STATES",
    "STAGE_OPTIONS",
    "DeviceInfo",
    "EntitySpec",
    "Topics",
    "discovery_messages",
]

STAGE_OPTIONS: tuple[str, ...] = ("wake", "light", "deep", "rem", "absent", "unscored")
"""The live stager's epoch labels (`frames.stage_name`), the stage sensor's enum options."""
SESSION_STATES: tuple[str, ...] = ("monitoring", "in_bed", "standby")
"""`Daemon.snapshot()["session"]["state"]` values."""
LIGHT_EFFECTS: tuple[str, ...] = ("reading", "night")
"""The light's modes other than off, offered as the light entity's effects."""
ALARM_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
"""The alarm time text entity's pattern: local HH:MM, 24 h."""

EVENT_TYPE_OF_KIND: Mapping[str, str] = {
    # Session life cycle (appliance.session); Sleep as Android has no in/out-of-bed events.
    "in_bed": "in_bed",
    "back_in_bed": "in_bed",
    "trying_to_sleep": "sleep_tracking_started",  # SAA: the user starts tracking = tries to sleep
    "asleep": "asleep",
    "awake": "awake",  # SAA's "awake"
    "final_wake": "awake",
    "out_of_bed": "out_of_bed",
    "session_closed": "sleep_tracking_stopped",  # SAA's
    # The alarm (appliance.alarm)
    "smart_window_open": "smart_period",  # SAA: the smart period before the alarm began
    "alarm_ringing": "alarm_alert_start",  # SAA's
    "alarm_snoozed": "alarm_snooze_clicked",  # SAA's
    "alarm_dismissed": "alarm_alert_dismiss",  # SAA's
    "alarm_missed": "alarm_missed",
}
"""Bus event kind -> the event entity's event_type (Sleep as Android's name where one fits)."""
EVENT_TYPES: tuple[str, ...] = tuple(dict.fromkeys(EVENT_TYPE_OF_KIND.values()))
"""Every event_type the event entity can fire, in a stable order."""

_LAST_NIGHT = "last_night"


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """One Home Assistant entity, as data.

    Attributes:
        key: Stable id within the device (unique_id suffix, topic level), [a-z0-9_].
        component: HA platform: binary_sensor, sensor, text, switch, number, button, light, event.
        name: Entity name (HA prefixes the device name).
        config: Platform-specific discovery keys (device_class, unit_of_measurement, options...).
        state_key: Whose state topic it reads: its own (None) or a shared document's key.
        command: True if it takes commands on ``<base>/<key>/set``.
    """

    key: str
    component: str
    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    state_key: str | None = None
    command: bool = False


def _night(key: str, name: str, field_name: str, **config: Any) -> EntitySpec:
    return EntitySpec(
        key,
        "sensor",
        name,
        {"value_template": f"{{{{ value_json.{field_name} }}}}", **config},
        state_key=_LAST_NIGHT,
    )


_MIN = {"device_class": "duration", "unit_of_measurement": "min"}

ENTITIES: tuple[EntitySpec, ...] = (
    EntitySpec("presence", "binary_sensor", "Presence", {"device_class": "occupancy"}),
    EntitySpec("in_bed", "binary_sensor", "In bed", {"icon": "mdi:bed"}),
    EntitySpec("asleep", "binary_sensor", "Asleep", {"icon": "mdi:sleep"}),
    EntitySpec(
        "stage", "sensor", "Sleep stage", {"device_class": "enum", "options": list(STAGE_OPTIONS)}
    ),
    EntitySpec(
        "session",
        "sensor",
        "Session",
        {"device_class": "enum", "options": list(SESSION_STATES), "icon": "mdi:bed-clock"},
    ),
    EntitySpec(
        "breath_rate",
        "sensor",
        "Breathing rate",
        {"unit_of_measurement": "breaths/min", "state_class": "measurement", "icon": "mdi:lungs"},
    ),
    EntitySpec(
        "heart_rate",
        "sensor",
        "Heart rate",
        {"unit_of_measurement": "bpm", "state_class": "measurement", "icon": "mdi:heart-pulse"},
    ),
    EntitySpec(
        "temperature",
        "sensor",
        "Temperature",
        {"device_class": "temperature", "unit_of_measurement": "°C", "state_class": "measurement"},
    ),
    EntitySpec(
        "humidity",
        "sensor",
        "Humidity",
        {"device_class": "humidity", "unit_of_measurement": "%", "state_class": "measurement"},
    ),
    EntitySpec(
        "illuminance",
        "sensor",
        "Illuminance",
        {"device_class": "illuminance", "unit_of_measurement": "lx", "state_class": "measurement"},
    ),
    _night(
        "total_sleep",
        "Last night total sleep",
        "tst_min",
        json_attributes_topic=None,  # filled in with the last-night topic by discovery_messages
        **_MIN,
    ),
    _night(
        "efficiency",
        "Last night sleep efficiency",
        "se_pct",
        unit_of_measurement="%",
        icon="mdi:percent",
    ),
    _night("latency", "Last night sleep latency", "sol_min", **_MIN),
    _night("waso", "Last night wake after sleep onset", "waso_min", **_MIN),
    _night("light_sleep", "Last night light sleep", "light_min", **_MIN),
    _night("deep_sleep", "Last night deep sleep", "deep_min", **_MIN),
    _night("rem_sleep", "Last night REM sleep", "rem_min", **_MIN),
    EntitySpec("next_alarm", "sensor", "Next alarm", {"device_class": "timestamp"}),
    EntitySpec(
        "alarm_time",
        "text",
        "Alarm time",
        {"pattern": ALARM_TIME_PATTERN, "min": 0, "max": 5, "mode": "text", "icon": "mdi:alarm"},
        command=True,
    ),
    EntitySpec("alarm_enabled", "switch", "Alarm", {"icon": "mdi:alarm-check"}, command=True),
    EntitySpec(
        "smart_window",
        "number",
        "Smart window",
        {
            "min": 0,
            "max": 45,
            "step": 1,
            "unit_of_measurement": "min",
            "mode": "box",
            "icon": "mdi:timer-sand",
        },
        command=True,
    ),
    EntitySpec("snooze", "button", "Snooze", {"icon": "mdi:alarm-snooze"}, command=True),
    EntitySpec("dismiss", "button", "Dismiss alarm", {"icon": "mdi:alarm-off"}, command=True),
    EntitySpec("standby", "switch", "Standby", {"icon": "mdi:power-sleep"}, command=True),
    EntitySpec(
        "light",
        "light",
        "Light",
        {
            "schema": "json",
            "brightness": True,
            "brightness_scale": 255,
            "supported_color_modes": ["brightness"],
            "effect": True,
            "effect_list": list(LIGHT_EFFECTS),
        },
        command=True,
    ),
    EntitySpec("sleep_event", "event", "Sleep event", {"event_types": list(EVENT_TYPES)}),
)
"""Every entity of the device (discovery loops over this table)."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The one Home Assistant device.

    Attributes:
        device_id: Stable id, [0-9a-z_-] (see `appliance.mqtt.device_id`).
        name: Device name shown in Home Assistant.
        model: Model name.
        manufacturer: Who makes it.
        sw_version: Software version (appliance.__version__).
    """

    device_id: str
    name: str = "Bedside sleep appliance"
    model: str = "Bedside sleep appliance (60 GHz radar)"
    manufacturer: str = "open"
    sw_version: str = __version__

    def block(self) -> dict[str, Any]:
        """The discovery payload's ``device`` block."""
        return {
            "identifiers": [f"appliance_{self.device_id}"],
            "name": self.name,
            "model": self.model,
            "manufacturer": self.manufacturer,
            "sw_version": self.sw_version,
        }


@dataclass(frozen=True, slots=True)
class Topics:
    """The bridge's topic names.

    Args:
        base: The base topic (`MqttConfig.base_topic`).
        discovery_prefix: Home Assistant's discovery prefix.
    """

    base: str
    discovery_prefix: str

    @property
    def availability(self) -> str:
        """online/offline, retained; the LWT."""
        return f"{self.base}/availability"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth/last-will topic."""
        return f"{self.discovery_prefix}/status"

    @property
    def event(self) -> str:
        """Sleep events (the event entity), never retained."""
        return f"{self.base}/event"

    def state(self, key: str) -> str:
        """Retained state of entity (or shared document) `key`."""
        return f"{self.base}/{key}/state"

    def command(self, key: str) -> str:
        """Command topic of entity `key`."""
        return f"{self.base}/{key}/set"

    def config(self, spec: EntitySpec, node_id: str) -> str:
        """Discovery config topic of `spec`."""
        return f"{self.discovery_prefix}/{spec.component}/{node_id}/{spec.key}/config"


_KEY = re.compile(r"^[a-z0-9_]+$")


def discovery_messages(
    device: DeviceInfo, topics: Topics, entities: tuple[EntitySpec, ...] = ENTITIES
) -> list[tuple[str, dict[str, Any]]]:
    """The retained discovery config messages, one per entity: [(topic, payload)].

    Raises:
        ValueError: a bad entity key or a duplicate one (a bug in the table).
    """
    node_id = f"appliance_{device.device_id}"
    origin = {"name": "appliance", "sw_version": device.sw_version}
    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for spec in entities:
        if not _KEY.match(spec.key) or spec.key in seen:
            raise ValueError(f"bad or duplicate entity key {spec.key!r}")
        seen.add(spec.key)
        payload: dict[str, Any] = {
            "name": spec.name,
            "unique_id": f"{node_id}_{spec.key}",
            "device": device.block(),
            "origin": origin,
            "availability_topic": topics.availability,
        }
        payload.update(spec.config)
        if spec.component == "event":
            payload["state_topic"] = topics.event
        elif spec.component != "button":
            payload["state_topic"] = topics.state(spec.state_key or spec.key)
        if "json_attributes_topic" in payload:
            # The whole score-free summary of the night becomes the entity's attributes.
            payload["json_attributes_topic"] = payload["state_topic"]
        if spec.command:
            payload["command_topic"] = topics.command(spec.key)
        out.append((topics.config(spec, node_id), payload))
    return out
