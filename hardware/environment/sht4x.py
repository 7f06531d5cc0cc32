"""Sensirion SHT4x (SHT40/41/45) temperature and humidity sensor on I2C.

The SHT4x has no registers: the host writes a one-byte command, waits for the conversion and
reads the answer, each 16-bit word followed by its CRC-8. A read header sent before the
conversion is done is NACKed.

References:
    Sensirion, "Datasheet SHT4x", v6.5 (2023): 4.5 command overview (0xFD measure T & RH with
    high repeatability, max 8.3 ms; 0x89 read serial number; 0x94 soft reset, max 1 ms),
    4.4 CRC-8 (polynomial 0x31, init 0xFF, no reflection, final XOR 0x00; CRC(0xBEEF) = 0x92),
    4.6 conversion: T = -45 + 175·S_T/(2^16-1) °C, RH = -6 + 125·S_RH/(2^16-1) %RH, RH cropped
    to 0–100 %RH.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from hardware.environment._bus import (
    ClimateReading,
    I2CBus,
    SensorCrcError,
    SensorNotResponding,
    read_msg,
    write_msg,
)

__all__ = [
    "CMD_MEASURE_HIGH",
    "CMD_SERIAL",
    "CMD_SOFT_RESET",
    "SHT4X_ADDRESS",
    "Sht4x",
    "crc8",
    "humidity_pct",
    "temperature_c",
]

log = logging.getLogger(__name__)

SHT4X_ADDRESS = 0x44
"""Default address (SHT40-AD1B; the -BD1B variant answers at 0x45)."""

CMD_MEASURE_HIGH = 0xFD
CMD_SERIAL = 0x89
CMD_SOFT_RESET = 0x94

MEASURE_WAIT_S = 0.0095
"""Wait after 0xFD: the datasheet's 8.3 ms maximum plus margin."""
SHORT_WAIT_S = 0.0015
"""Wait after a soft reset or a serial-number command (max 1 ms)."""


def crc8(data: Sequence[int]) -> int:
    """Sensirion's CRC-8 of `data` (polynomial 0x31, init 0xFF, MSB first, no final XOR)."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def temperature_c(raw: int) -> float:
    """Temperature from the 16-bit word, °C (datasheet 4.6)."""
    return -45.0 + 175.0 * raw / 65535.0


def humidity_pct(raw: int) -> float:
    """Relative humidity from the 16-bit word, % cropped to 0–100 (datasheet 4.6)."""
    return min(100.0, max(0.0, -6.0 + 125.0 * raw / 65535.0))


class Sht4x:
    """An SHT4x on `bus`.

    Args:
        bus: The I2C bus.
        address: 7-bit address (0x44, or 0x45 for the -B variants).
        sleep: Blocks for the conversion time, seconds (time.sleep on the Pi; a fake bus's
            `sleep` in tests and on simulated hardware).
    """

    name = "sht4x"
    role = "climate"

    def __init__(
        self,
        bus: I2CBus,
        address: int = SHT4X_ADDRESS,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus = bus
        self.address = address
        self._sleep = sleep

    def _command(self, command: int, wait_s: float, n_words: int) -> list[int]:
        try:
            self.bus.i2c_rdwr(write_msg(self.address, [command]))
            self._sleep(wait_s)
            if n_words == 0:
                return []
            msg = read_msg(self.address, 3 * n_words)
            self.bus.i2c_rdwr(msg)
        except OSError as e:
            raise SensorNotResponding(self.name, self.address, e) from e
        data = bytes(msg)
        words = []
        for i in range(n_words):
            hi, lo, crc = data[3 * i], data[3 * i + 1], data[3 * i + 2]
            if crc8((hi, lo)) != crc:
                raise SensorCrcError(
                    self.name, self.address, f"CRC mismatch on word {i} ({hi:02x}{lo:02x})"
                )
            words.append(hi << 8 | lo)
        return words

    def probe(self) -> str:
        """Reset the part and read its serial number.

        Returns:
            An identification, "SHT4x serial 0x........".

        Raises:
            SensorNotResponding: nothing ACKs at the address.
            SensorCrcError: the serial number's checksum failed.
        """
        self._command(CMD_SOFT_RESET, SHORT_WAIT_S, 0)
        hi, lo = self._command(CMD_SERIAL, SHORT_WAIT_S, 2)
        serial = hi << 16 | lo
        log.debug("sht4x at 0x%02x serial 0x%08x", self.address, serial)
        return f"SHT4x serial 0x{serial:08x}"

    def read(self) -> ClimateReading:
        """Measure once with high repeatability (blocks ~10 ms).

        Raises:
            SensorNotResponding: NACK or bus error.
            SensorCrcError: a word's checksum failed.
        """
        raw_t, raw_rh = self._command(CMD_MEASURE_HIGH, MEASURE_WAIT_S, 2)
        return ClimateReading(temperature_c(raw_t), humidity_pct(raw_rh), None, (raw_t, raw_rh))
