"""Vishay VEML7700 ambient light sensor on I2C: the cheaper alternative to the TSL2591.

16-bit registers addressed by a command code, little-endian (LSB first): 0x00 ALS_CONF_0
(ALS_GAIN bits 12:11: 00 ×1, 01 ×2, 10 ×1/8, 11 ×1/4; ALS_IT bits 9:6: 1100 25 ms, 1000 50 ms,
0000 100 ms, 0001 200 ms, 0010 400 ms, 0011 800 ms; ALS_SD bit 0: 1 = shut down), 0x04 ALS
(the photopic channel), 0x05 WHITE. The resolution is 0.0042 lx/count at ×2 and 800 ms and scales
inversely with gain and integration time (2.1504 lx/count at ×1/8 and 25 ms, ~140 klx full
scale). It has no ID register, so `probe` checks that the configuration register reads back
what was written.

References:
    Vishay, "VEML7700 High Accuracy Ambient Light Sensor With I2C Interface", datasheet
    document 84286, rev. 1.7 (2022): command codes, ALS_CONF_0 bits, resolution table,
    2.5 ms wake-up after power on.
    Vishay, "Designing the VEML7700 Into an Application", application note 84323 (2019):
    auto-ranging from ×1/8 and 100 ms up while the count is <= 100, and the correction of the
    non-linearity at the low gains: lx' = 6.0135e-13·lx^4 − 9.3924e-9·lx^3 + 8.1488e-5·lx^2 +
    1.0023·lx (the note's table used 0.0036 lx/count; the later datasheet gives 0.0042).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from hardware.environment._autorange import Step, next_step
from hardware.environment._bus import (
    I2CBus,
    LightReading,
    SensorIdMismatch,
    SensorNotResponding,
    SensorRangeError,
)

__all__ = [
    "GAIN_BITS",
    "IT_BITS",
    "LADDER",
    "VEML7700_ADDRESS",
    "Veml7700",
    "config_word",
    "corrected_lux",
    "resolution_lx",
]

log = logging.getLogger(__name__)

VEML7700_ADDRESS = 0x10
REG_CONF = 0x00
REG_ALS = 0x04
REG_WHITE = 0x05
SD_BIT = 0x0001

GAIN_BITS: dict[float, int] = {1.0: 0b00, 2.0: 0b01, 0.125: 0b10, 0.25: 0b11}
"""Gain (×) to ALS_GAIN (bits 12:11)."""
IT_BITS: dict[float, int] = {
    25.0: 0b1100,
    50.0: 0b1000,
    100.0: 0b0000,
    200.0: 0b0001,
    400.0: 0b0010,
    800.0: 0b0011,
}
"""Integration time (ms) to ALS_IT (bits 9:6)."""

RESOLUTION_MAX_LX = 0.0042
"""lx per count at the most sensitive setting (×2, 800 ms)."""

LADDER: tuple[Step, ...] = (
    Step(0.125, 25.0, 65535),
    Step(0.125, 100.0, 65535),
    Step(0.25, 100.0, 65535),
    Step(1.0, 100.0, 65535),
    Step(2.0, 100.0, 65535),
    Step(2.0, 200.0, 65535),
    Step(2.0, 400.0, 65535),
    Step(2.0, 800.0, 65535),
)
"""Settings from bright (~140 klx full scale) to darkest (0.0042 lx/count)."""

LOW_COUNT = 100
"""Counts under which a more sensitive setting is tried (the application note's threshold)."""
MAX_MEASUREMENTS = 3


def resolution_lx(gain: float, integration_ms: float) -> float:
    """Lux per count at a setting (the datasheet's resolution table)."""
    return RESOLUTION_MAX_LX * (800.0 / integration_ms) * (2.0 / gain)


def corrected_lux(lux: float) -> float:
    """The application note's non-linearity correction for readings at ×1/8 and ×1/4, lx."""
    return ((6.0135e-13 * lux - 9.3924e-9) * lux + 8.1488e-5) * lux * lux + 1.0023 * lux


def config_word(gain: float, integration_ms: float, *, shutdown: bool = False) -> int:
    """ALS_CONF_0 for a setting (persistence 1, interrupt off)."""
    return GAIN_BITS[gain] << 11 | IT_BITS[integration_ms] << 6 | (SD_BIT if shutdown else 0)


class Veml7700:
    """A VEML7700 on `bus`, auto-ranging across `LADDER`.

    Args:
        bus: The I2C bus.
        address: 7-bit address (fixed 0x10).
        sleep: Blocks for the integration time, seconds.
    """

    name = "veml7700"
    role = "light"

    def __init__(
        self,
        bus: I2CBus,
        address: int = VEML7700_ADDRESS,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus = bus
        self.address = address
        self._sleep = sleep
        self._index = 2

    def _write_word(self, register: int, value: int) -> None:
        try:
            self.bus.write_i2c_block_data(self.address, register, [value & 0xFF, value >> 8])
        except OSError as e:
            raise SensorNotResponding(self.name, self.address, e) from e

    def _read_word(self, register: int) -> int:
        try:
            lsb, msb = self.bus.read_i2c_block_data(self.address, register, 2)
        except OSError as e:
            raise SensorNotResponding(self.name, self.address, e) from e
        return lsb | msb << 8

    def probe(self) -> str:
        """Write a shut-down configuration and check that it reads back.

        Raises:
            SensorNotResponding: nothing ACKs at the address.
            SensorIdMismatch: the configuration register does not read back.
        """
        step = LADDER[self._index]
        word = config_word(step.gain, step.integration_ms, shutdown=True)
        self._write_word(REG_CONF, word)
        back = self._read_word(REG_CONF)
        if back != word:
            raise SensorIdMismatch(
                self.name, self.address, f"ALS_CONF reads 0x{back:04x} after writing 0x{word:04x}"
            )
        return "VEML7700 (config read-back)"

    def _measure(self, step: Step) -> int:
        self._write_word(REG_CONF, config_word(step.gain, step.integration_ms, shutdown=True))
        self._write_word(REG_CONF, config_word(step.gain, step.integration_ms))
        # 2.5 ms wake-up, then one whole integration with the new setting.
        self._sleep(0.0025 + step.integration_ms / 1000.0 * 1.1 + 0.005)
        return self._read_word(REG_ALS)

    def read(self) -> LightReading:
        """Measure, re-ranging as needed (blocks 0.03–2 s).

        Raises:
            SensorNotResponding: NACK or bus error.
            SensorRangeError: saturated even at the least sensitive setting.
        """
        for _ in range(MAX_MEASUREMENTS):
            step = LADDER[self._index]
            counts = self._measure(step)
            nxt = next_step(LADDER, self._index, counts, low_count=LOW_COUNT)
            if nxt is None:
                break
            self._index = nxt
        if counts >= int(0.95 * step.max_count):
            raise SensorRangeError(self.name, self.address, "saturated at the lowest gain")
        lux = counts * resolution_lx(step.gain, step.integration_ms)
        if step.gain <= 0.25:
            lux = corrected_lux(lux)
        return LightReading(lux, step.gain, step.integration_ms, (counts,))
