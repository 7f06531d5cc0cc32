"""The LED ring: colour science, the sunrise curve, the ring drivers and the controller."""

from hardware.light.colour import cct_to_rgb, lightness_to_luminance
from hardware.light.controller import LightController, LightSettings, LightStatus
from hardware.light.ring import (
    LedRing,
    RingHealth,
    SimulatedRing,
    SpiRing,
    Ws281xRing,
    encode_ws2812_spi,
)
from hardware.light.sunrise import (
    Dither,
    LightMode,
    SunriseCurve,
    night_frame,
    reading_frame,
    sunrise_frame,
)

__all__ = [
    "Dither",
    "LedRing",
    "LightController",
    "LightMode",
    "LightSettings",
    "LightStatus",
    "RingHealth",
    "SimulatedRing",
    "SpiRing",
    "SunriseCurve",
    "Ws281xRing",
    "cct_to_rgb",
    "encode_ws2812_spi",
    "lightness_to_luminance",
    "night_frame",
    "reading_frame",
    "sunrise_frame",
]
