"""ams TSL2591 light-to-digital converter on I2C, auto-ranged from ~0.001 lx to daylight.

Two photodiodes: channel 0 sees visible + infrared, channel 1 mostly infrared. Every register
access starts with a command byte: bit 7 (CMD) set, bits 6:5 = 01 (normal transaction), bits 4:0
the register address, so register r is addressed as 0xA0 | r.

References:
    ams, "TSL2591 Light-to-Digital Converter", datasheet DS000338 v3-00 (2018): register set
    (0x00 ENABLE: PON bit 0, AEN bit 1; 0x01 CONTROL: AGAIN bits 5:4, ATIME bits 2:0 =
    (n+1)·100 ms; 0x12 ID = 0x50; 0x13 STATUS: AVALID bit 0; 0x14–0x17 C0DATAL/H, C1DATAL/H),
    full scale 36863 counts at 100 ms and 65535 above.
    Gains 1, 25, 428 and 9876× and the lux equation with device factor 408,
    lux = (C0 − C1)·(1 − C1/C0) / (t_ms·gain/408), as measured and published by Adafruit
    (Adafruit_TSL2591_Library, "calculateLux"; the datasheet's typical gains are 24.5/400/9200×).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from hardware.environment._autorange import Step, next_step
from hardware.environment._bus import (
    I2CBus,
    LightReading,
    SensorError,
    SensorIdMismatch,
    SensorNotResponding,
    SensorRangeError,
)

__all__ = [
    "COMMAND",
    "GAIN_CODES",
    "LADDER",
    "LUX_DF",
    "TSL2591_ADDRESS",
    "TSL2591_ID",
    "Tsl2591",
    "counts_per_lux",
    "lux_from_counts",
]

log = logging.getLogger(__name__)

TSL2591_ADDRESS = 0x29
TSL2591_ID = 0x50
COMMAND = 0xA0
REG_ENABLE = 0x00
REG_CONTROL = 0x01
REG_ID = 0x12
REG_STATUS = 0x13
REG_C0DATAL = 0x14
ENABLE_PON = 0x01
ENABLE_AEN = 0x02
STATUS_AVALID = 0x01

GAIN_CODES: dict[float, int] = {1.0: 0b00, 25.0: 0b01, 428.0: 0b10, 9876.0: 0b11}
"""Gain (×) to the CONTROL register's AGAIN field."""
LUX_DF = 408.0
"""Device factor of the lux equation (counts per lux at 1×, 1 ms, scaled)."""

LADDER: tuple[Step, ...] = (
    Step(1.0, 100.0, 36863),
    Step(25.0, 100.0, 36863),
    Step(428.0, 100.0, 36863),
    Step(9876.0, 100.0, 36863),
    Step(9876.0, 200.0, 65535),
    Step(9876.0, 400.0, 65535),
    Step(9876.0, 600.0, 65535),
)
"""Settings from bright (saturates near 100 klx) to darkest (~14 counts per mlx)."""

LOW_COUNT = 200
"""Channel-0 counts under which a more sensitive setting is tried (0.5 % resolution)."""
MAX_MEASUREMENTS = 3
"""Measurements per `read` at most (a saturated one, a coarse one, the final one)."""


def counts_per_lux(gain: float, integration_ms: float) -> float:
    """Channel counts per lux of the lux equation ("cpl")."""
    return integration_ms * gain / LUX_DF


def lux_from_counts(ch0: int, ch1: int, gain: float, integration_ms: float) -> float:
    """Illuminance from the two channels' counts, lx (>= 0; 0 in the dark)."""
    # More infrared than visible+infrared is noise at the bottom of the range, not light (and the
    # equation's two negative factors would make it look like some).
    if ch0 <= 0 or ch1 >= ch0:
        return 0.0
    return (ch0 - ch1) * (1.0 - ch1 / ch0) / counts_per_lux(gain, integration_ms)


def _control(step: Step) -> int:
    return GAIN_CODES[step.gain] << 4 | (int(step.integration_ms // 100) - 1)


class Tsl2591:
    """A TSL2591 on `bus`, auto-ranging across `LADDER`.

    The setting that fitted the last reading is kept, so a steady room costs one integration
    (100–600 ms) per reading; a change of light costs up to `MAX_MEASUREMENTS`.

    Args:
        bus: The I2C bus.
        address: 7-bit address (fixed 0x29).
        sleep: Blocks for the integration time, seconds.
    """

    name = "tsl2591"
    role = "light"

    def __init__(
        self,
        bus: I2CBus,
        address: int = TSL2591_ADDRESS,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus = bus
        self.address = address
        self._sleep = sleep
        self._index = 3

    def _write(self, register: int, value: int) -> None:
        try:
            self.bus.write_byte_data(self.address, COMMAND | register, value)
        except OSError as e:
            raise SensorNotResponding(self.name, self.address, e) from e

    def _read(self, register: int, length: int) -> list[int]:
        try:
            return self.bus.read_i2c_block_data(self.address, COMMAND | register, length)
        except OSError as e:
            raise SensorNotResponding(self.name, self.address, e) from e

    def probe(self) -> str:
        """Check the ID register and power the part on.

        Raises:
            SensorNotResponding: nothing ACKs at the address.
            SensorIdMismatch: the ID register is not 0x50.
        """
        (part_id,) = self._read(REG_ID, 1)
        if part_id != TSL2591_ID:
            raise SensorIdMismatch(self.name, self.address, f"ID 0x{part_id:02x}, not 0x50")
        self._write(REG_ENABLE, ENABLE_PON)
        return "TSL2591 (ID 0x50)"

    def _measure(self, step: Step) -> tuple[int, int]:
        # ALS off while the setting changes, so the next valid result is wholly the new setting.
        self._write(REG_ENABLE, ENABLE_PON)
        self._write(REG_CONTROL, _control(step))
        self._write(REG_ENABLE, ENABLE_PON | ENABLE_AEN)
        self._sleep(step.integration_ms / 1000.0 * 1.05 + 0.005)
        for _ in range(3):
            (status,) = self._read(REG_STATUS, 1)
            if status & STATUS_AVALID:
                break
            self._sleep(0.02)
        else:
            raise SensorError(self.name, self.address, "no valid conversion (AVALID never set)")
        c0l, c0h, c1l, c1h = self._read(REG_C0DATAL, 4)
        return c0l | c0h << 8, c1l | c1h << 8

    def read(self) -> LightReading:
        """Measure, re-ranging as needed (blocks 0.1–1.5 s).

        Raises:
            SensorNotResponding: NACK or bus error.
            SensorRangeError: saturated even at the least sensitive setting.
        """
        for _ in range(MAX_MEASUREMENTS):
            step = LADDER[self._index]
            ch0, ch1 = self._measure(step)
            nxt = next_step(LADDER, self._index, max(ch0, ch1), low_count=LOW_COUNT)
            if nxt is None:
                break
            self._index = nxt
        if max(ch0, ch1) >= int(0.95 * step.max_count):
            raise SensorRangeError(self.name, self.address, "saturated at the lowest gain")
        lux = lux_from_counts(ch0, ch1, step.gain, step.integration_ms)
        return LightReading(lux, step.gain, step.integration_ms, (ch0, ch1))
