"""The I2C bus the environment drivers talk to, their readings and their errors.

A driver is given its bus (gpiozero's lesson: the device never opens the bus itself), so the same
driver code runs on `smbus2.SMBus` on the Pi and on the register-level fakes in
`hardware.environment.fakes` everywhere else. The bus is described by the few `smbus2.SMBus`
methods the drivers use. Combined transactions go through `i2c_rdwr` with `smbus2.i2c_msg`
(smbus2 is pure Python and imports anywhere; it only needs `/dev/i2c-N` when a bus is opened).
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from appliance.errors import HardwareError

__all__ = [
    "ClimateReading",
    "I2CBus",
    "LightReading",
    "SensorCrcError",
    "SensorError",
    "SensorIdMismatch",
    "SensorNotResponding",
    "SensorRangeError",
    "open_bus",
    "read_msg",
    "write_msg",
]


@runtime_checkable
class I2CBus(Protocol):
    """The subset of `smbus2.SMBus` the drivers use (addresses are 7-bit)."""

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        """Write one byte `value` to `register`."""
        ...

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        """Read one byte from `register`."""
        ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """Read `length` bytes starting at `register` (write register, repeated start, read)."""
        ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        """Write `data` starting at `register`."""
        ...

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Run `smbus2.i2c_msg` messages as one combined transaction; read messages are filled."""
        ...


def write_msg(address: int, data: Sequence[int]) -> Any:
    """Return an `smbus2.i2c_msg` that writes `data` to `address`."""
    from smbus2 import i2c_msg  # lazily: only the drivers' transactions need it

    return i2c_msg.write(address, bytes(data))


def read_msg(address: int, length: int) -> Any:
    """Return an `smbus2.i2c_msg` that reads `length` bytes from `address`."""
    from smbus2 import i2c_msg

    return i2c_msg.read(address, length)


def open_bus(number: int) -> I2CBus:
    """Open `/dev/i2c-<number>` with smbus2 (the Pi's header bus is 1).

    Raises:
        HardwareError: the bus device does not exist or cannot be opened (I2C not enabled in
            raspi-config, or no permission: the user must be in the `i2c` group).
    """
    try:
        from smbus2 import SMBus

        bus: I2CBus = SMBus(number)
    except (ImportError, OSError) as e:
        raise HardwareError(f"cannot open I2C bus /dev/i2c-{number}: {e}") from e
    return bus


class SensorError(HardwareError):
    """An environment sensor did not answer, or answered nonsense.

    Attributes:
        sensor: The part ("sht4x").
        address: Its 7-bit I2C address.
        reason: What went wrong, in a few words.
    """

    def __init__(self, sensor: str, address: int, reason: str) -> None:
        self.sensor = sensor
        self.address = address
        self.reason = reason
        super().__init__(f"{sensor} at 0x{address:02x}: {reason}")


class SensorNotResponding(SensorError):
    """The bus transaction failed: no ACK (the part is absent or hung) or another bus error."""

    def __init__(self, sensor: str, address: int, cause: OSError) -> None:
        self.errno_code = cause.errno
        what = "no answer (NACK)" if cause.errno == errno.EREMOTEIO else f"bus error ({cause})"
        super().__init__(sensor, address, what)


class SensorCrcError(SensorError):
    """A word's checksum did not match: the transfer was corrupted."""


class SensorIdMismatch(SensorError):
    """Something answered at the address, but its identification is not the expected part's."""


class SensorRangeError(SensorError):
    """The reading is outside what the part can measure (saturated, or a skipped measurement)."""


@dataclass(frozen=True, slots=True)
class ClimateReading:
    """One temperature/humidity(/pressure) measurement.

    Attributes:
        temperature_c: Air temperature, °C.
        humidity_pct: Relative humidity, % (0–100).
        pressure_hpa: Barometric pressure, hPa; None for parts without a barometer.
        raw: The ADC words the values came from (for stuck-value detection).
    """

    temperature_c: float
    humidity_pct: float
    pressure_hpa: float | None
    raw: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LightReading:
    """One illuminance measurement.

    Attributes:
        lux: Illuminance, lx (photopic), >= 0.
        gain: The analog gain used (×).
        integration_ms: The integration time used, ms.
        raw: The channel counts the value came from (for stuck-value detection).
    """

    lux: float
    gain: float
    integration_ms: float
    raw: tuple[int, ...]
