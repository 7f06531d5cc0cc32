"""The light's state machine: sunrise for the armed alarm, reading and night light, off.

`LightController.update(now_s)` is called by the daemon (every second, or every
`update_interval_s` seconds, which is shorter while the low end of the sunrise is dithered); it
works out the wanted frame, dithers it and shows it on the ring. It never reads a clock and never
raises on a ring error (the ring reports those in its `health`).

Priority: a manual mode (reading, night) the user picked wins; otherwise an armed sunrise plays
from `set_s - sunrise_s` and holds full brightness after the set time until the alarm is
dismissed (`dismiss`) or `hold_s` has passed; otherwise the ring is off. Turning the light off by
hand (`set_mode("off")` or `toggle` while lit) during a sunrise cancels that sunrise.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hardware.light.colour import relative_luminance
from hardware.light.ring import LedRing, RingHealth
from hardware.light.sunrise import (
    DITHER_MAX_LSB,
    FULL_SCALE,
    Dither,
    LightMode,
    SunriseCurve,
    night_frame,
    reading_frame,
    sunrise_frame,
)

__all__ = ["LightController", "LightSettings", "LightStatus"]

log = logging.getLogger(__name__)

_FAST_S = 0.04  # 25 frames/s: a dithered level looks steady
_SLOW_S = 1.0


@dataclass(frozen=True, slots=True)
class LightSettings:
    """How the light behaves.

    Attributes:
        sunrise_s: Length of the sunrise, seconds (0 disables it).
        max_brightness: Brightest channel at the end of the sunrise, fraction 0–1.
        reading_brightness: Brightest channel of the reading light, fraction 0–1.
        reading_k: Colour temperature of the reading light, kelvin.
        night_brightness: Red level of the night light, fraction 0–1.
        hold_s: How long full sunrise brightness holds after the set time without a dismiss, s.
        full_scale_lux: Illuminance the ring adds at the light sensor when every channel is at 255,
            lux (calibrate per bedroom; the default is a ring a metre from the sensor).
        curve: The sunrise's colour temperatures.
    """

    sunrise_s: float = 1800.0
    max_brightness: float = 0.8
    reading_brightness: float = 0.6
    reading_k: float = 3000.0
    night_brightness: float = 0.02
    hold_s: float = 1800.0
    full_scale_lux: float = 60.0
    curve: SunriseCurve = field(default_factory=SunriseCurve)


@dataclass(frozen=True, slots=True)
class LightStatus:
    """What the light is doing (for the TUI, MQTT and the light sensor).

    Attributes:
        t_s: Time of the update, UTC epoch seconds.
        mode: "off", "sunrise", "reading" or "night".
        level: Mean relative luminance of the frame shown, 0 (off) to 1 (all white at 255).
        emitted_lux_estimate: `level · full_scale_lux`, lux, to discount at the light sensor.
        health: The ring's write health.
    """

    t_s: float
    mode: LightMode
    level: float
    emitted_lux_estimate: float
    health: RingHealth


class LightController:
    """Drives a `LedRing`: sunrise, reading light, night light, off.

    Args:
        ring: The ring (simulated or real).
        settings: Behaviour; None means the defaults.
    """

    def __init__(self, ring: LedRing, settings: LightSettings | None = None) -> None:
        self._ring = ring
        self._s = settings or LightSettings()
        self._dither = Dither(ring.n_leds)
        self._manual: LightMode = "off"
        self._set_s: float | None = None
        self._dismissed = False
        self._shown_mode: LightMode | None = None
        self._last_sent: npt.NDArray[np.uint8] | None = None
        self._status = LightStatus(math.nan, "off", 0.0, 0.0, ring.health)
        self._interval_s = _SLOW_S

    # -- commands (from the alarm, the button, the TUI, MQTT) ---------------------------------

    def arm_sunrise(self, set_s: float) -> None:
        """Play the sunrise ending at `set_s` (UTC epoch s); replaces a previously armed one."""
        if self._set_s != set_s:
            log.info("sunrise armed for set_s=%.0f over %.0f s", set_s, self._s.sunrise_s)
        self._set_s = set_s
        self._dismissed = False

    def cancel_sunrise(self) -> None:
        """Forget the armed sunrise (alarm disabled or skipped)."""
        self._set_s = None

    def dismiss(self) -> None:
        """The alarm was dismissed: end this sunrise (a manual mode stays as it is)."""
        self._dismissed = True

    def set_mode(self, mode: LightMode) -> None:
        """Pick a manual mode: "reading", "night" or "off" ("off" also ends a running sunrise).

        Raises:
            ValueError: `mode` is "sunrise" (arm one with `arm_sunrise`) or unknown.
        """
        if mode not in ("off", "reading", "night"):
            raise ValueError(f"manual light mode must be off, reading or night, got {mode!r}")
        if mode == "off" and self._status.mode == "sunrise":
            self._dismissed = True
        self._manual = mode

    def toggle(self) -> LightMode:
        """Short press outside an alarm: off ↔ reading light (a lit light of any kind goes off).

        Returns:
            The new manual mode.
        """
        # The manual mode counts at once, before the next `update` has shown it.
        lit = self._manual != "off" or self._status.mode != "off"
        self.set_mode("off" if lit else "reading")
        return self._manual

    # -- the tick -----------------------------------------------------------------------------

    @property
    def status(self) -> LightStatus:
        """The last update's status."""
        return self._status

    @property
    def level(self) -> float:
        """Mean relative luminance of the frame shown, 0–1."""
        return self._status.level

    @property
    def emitted_lux_estimate(self) -> float:
        """Illuminance the ring adds at the light sensor now, lux (an estimate)."""
        return self._status.emitted_lux_estimate

    @property
    def update_interval_s(self) -> float:
        """When the next `update` is wanted, seconds: 0.04 while dithering, else 1."""
        return self._interval_s

    def mode_at(self, now_s: float) -> LightMode:
        """The mode the light is in at `now_s`, without showing anything."""
        if self._manual != "off":
            return self._manual
        set_s = self._set_s
        if set_s is None or self._dismissed or self._s.sunrise_s <= 0.0:
            return "off"
        if set_s - self._s.sunrise_s <= now_s < set_s + self._s.hold_s:
            return "sunrise"
        return "off"

    def update(self, now_s: float) -> LightStatus:
        """Show the frame for `now_s` (UTC epoch seconds) and return the status."""
        mode = self.mode_at(now_s)
        s = self._s
        n = self._ring.n_leds
        set_s = self._set_s
        if mode == "sunrise" and set_s is not None:
            want = sunrise_frame(
                now_s, set_s - s.sunrise_s, s.sunrise_s, n, s.max_brightness, s.curve
            )
        elif mode == "reading":
            want = reading_frame(n, s.reading_brightness, s.reading_k)
        elif mode == "night":
            want = night_frame(n, s.night_brightness)
        else:
            want = np.zeros((n, 3))
        if mode != self._shown_mode:
            log.info("light mode %s", mode)
            self._dither.reset()
            self._shown_mode = mode
        frame = self._dither.update(want)
        peak = float(want.max())
        fractional = bool(np.any(np.abs(want - np.rint(want)) > 1e-9))
        self._interval_s = _FAST_S if 0.0 < peak < DITHER_MAX_LSB and fractional else _SLOW_S
        # A steady frame is not resent every tick; a failed write is (the ring may be back).
        if (
            self._last_sent is None
            or not np.array_equal(frame, self._last_sent)
            or not self._ring.health.ok
        ):
            self._ring.show(frame)
            self._last_sent = frame
        level = float(relative_luminance(want / FULL_SCALE).mean())
        self._status = LightStatus(now_s, mode, level, level * s.full_scale_lux, self._ring.health)
        return self._status

    def close(self) -> None:
        """Turn the ring off and release it."""
        self._ring.close()
