"""Register-level fakes of the environment sensors: the test doubles and the simulated twins.

`FakeI2CBus` implements `I2CBus` and routes each transaction to the device at its address the
way the bus does on the Pi: a missing (or faulted) device raises `OSError(EREMOTEIO)`, which is
what the kernel returns for a NACK. Each fake device answers as its datasheet says: command
writes, register pointers with auto-increment, `i2c_rdwr` read lengths, conversion times (a
result read too early is NACKed by the SHT4x and not valid on the light sensors), CRCs. Their
values come from a `BedroomNight`, a deterministic function of the injected clock time, so the
daemon on simulated hardware shows a plausible night. Faults are injected per device:
`nack`, `crc_error` (SHT4x), `stuck` (the raw values freeze).

Conversion time runs on the bus's own counter, advanced by `FakeI2CBus.sleep` (give it to the
drivers as their `sleep`), so nothing ever waits in real time.
"""

from __future__ import annotations

import ctypes
import errno
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from appliance.clock import local_datetime
from hardware.environment import bme280 as _bme
from hardware.environment import sht4x as _sht
from hardware.environment import tsl2591 as _tsl
from hardware.environment import veml7700 as _veml

__all__ = [
    "Ambient",
    "BedroomNight",
    "FakeBme280",
    "FakeDevice",
    "FakeI2CBus",
    "FakeSht4x",
    "FakeTsl2591",
    "FakeVeml7700",
    "ProtocolViolation",
    "simulated_bus",
]

I2C_M_RD = 0x0001


class ProtocolViolation(AssertionError):
    """The driver did something the datasheet does not allow (a bug, loud in tests)."""


def _nack() -> OSError:
    return OSError(errno.EREMOTEIO, "Remote I/O error")


@dataclass(frozen=True, slots=True)
class Ambient:
    """The bedroom's air and light at one moment."""

    temperature_c: float
    humidity_pct: float
    pressure_hpa: float
    lux: float


def _jitter(t_s: float, salt: int) -> float:
    """A deterministic pseudo-random number in [-1, 1] for each 10-s slot of time."""
    return random.Random(int(t_s // 10.0) * 7919 + salt).uniform(-1.0, 1.0)


@dataclass(frozen=True, slots=True)
class BedroomNight:
    """A plausible bedroom over the day, in local time.

    The room cools from 20 °C at 22:00 to 18 °C at 06:00 and warms back over the day; humidity
    swings around 45 %; lamps give 200 lx until lights out, then ~0.01 lx (a standby LED, street
    light through curtains) until dawn brightens the room over an hour to daylight. Small
    deterministic jitter keeps the raw words moving the way real sensor noise does.

    Attributes:
        tz: Zone of the local times.
        lights_out_h: Local hour the lamps go off (23.0 = 23:00).
        dawn_h: Local hour dawn starts.
        dark_lux: Illuminance in the dark room, lx.
        light: A scene's light to follow instead of the clock-hour lamps: illuminance, lx, at
            scene seconds (e.g. `hardware.radar.scene.SceneLight.lux_at`), or None.
        light_origin_s: UTC epoch seconds of scene time 0 for `light`.
    """

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    lights_out_h: float = 23.0
    dawn_h: float = 6.0
    dark_lux: float = 0.01
    light: Callable[[float], float] | None = None
    light_origin_s: float = 0.0

    def at(self, t_s: float) -> Ambient:
        """The ambient values at UTC epoch seconds `t_s`."""
        d = local_datetime(t_s, self.tz)
        h = d.hour + d.minute / 60.0 + d.second / 3600.0
        x = (h - 22.0) % 24.0  # hours since 22:00
        temp = 20.0 - 2.0 * x / 8.0 if x <= 8.0 else 18.0 + 2.0 * (x - 8.0) / 16.0
        temp += 0.02 * _jitter(t_s, 1)
        hum = 45.0 + 3.0 * math.sin(2.0 * math.pi * x / 24.0) + 0.1 * _jitter(t_s, 2)
        pressure = 1013.0 + 2.0 * math.sin(2.0 * math.pi * h / 24.0) + 0.02 * _jitter(t_s, 3)
        since_out = (h - self.lights_out_h) % 24.0
        dark_span = (self.dawn_h - self.lights_out_h) % 24.0
        if since_out < dark_span:
            lux = self.dark_lux
        elif since_out < dark_span + 1.0:  # dawn: log-linear from dark to 50 lx in an hour
            frac = since_out - dark_span
            lux = self.dark_lux * (50.0 / self.dark_lux) ** frac
        elif 7.0 <= h < 19.0:
            lux = 300.0
        else:
            lux = 200.0
        if self.light is not None:
            lux = self.light(t_s - self.light_origin_s)
        lux *= 1.0 + 0.01 * _jitter(t_s, 4)
        return Ambient(temp, hum, pressure, lux)


class FakeDevice:
    """A device on the fake bus: answers writes and reads at the transaction level.

    Attributes:
        address: 7-bit address.
        nack: If True, every transaction is NACKed (a missing or hung part).
        stuck: If True, the raw values freeze at the last ones produced (the BME280 stops
            converting: its data registers keep what they hold, the reset values after a reset).
    """

    def __init__(self, address: int, ambient: Callable[[], Ambient]) -> None:
        self.address = address
        self.ambient = ambient
        self.nack = False
        self.stuck = False
        self.transactions = 0

    def write(self, data: bytes, at_s: float) -> None:
        """Receive a write message (command or register pointer, then data)."""
        raise NotImplementedError

    def read(self, length: int, at_s: float) -> bytes:
        """Answer a read message of `length` bytes."""
        raise NotImplementedError


class _RegisterDevice(FakeDevice):
    """A device with a register pointer and auto-increment (TSL2591, BME280, VEML7700)."""

    def __init__(self, address: int, ambient: Callable[[], Ambient]) -> None:
        super().__init__(address, ambient)
        self.regs = bytearray(256)
        self.pointer = 0

    def register(self, command: int) -> int:
        """The register a write's first byte points at."""
        return command

    def on_write(self, register: int, value: int, at_s: float) -> None:
        """Store one written byte (subclasses add side effects and checks)."""
        self.regs[register] = value

    def on_read(self, register: int, at_s: float) -> None:
        """Refresh registers before a read starting at `register`."""

    def write(self, data: bytes, at_s: float) -> None:
        """Set the register pointer from the first byte, then write the rest from there."""
        if not data:
            return
        self.pointer = self.register(data[0])
        for i, value in enumerate(data[1:]):
            self.on_write((self.pointer + i) & 0xFF, value, at_s)

    def read(self, length: int, at_s: float) -> bytes:
        """Read from the register pointer, auto-incrementing."""
        self.on_read(self.pointer, at_s)
        out = bytes(self.regs[(self.pointer + i) & 0xFF] for i in range(length))
        self.pointer = (self.pointer + length) & 0xFF
        return out


class FakeSht4x(FakeDevice):
    """An SHT4x: commands 0xFD (8.3 ms), 0x89 (serial), 0x94 (reset), CRC-8 on every word.

    Attributes:
        serial: The serial number it reports.
        crc_error: If True, the first CRC byte of every answer is corrupted.
    """

    CONVERSION_S = 0.0083

    def __init__(
        self,
        ambient: Callable[[], Ambient],
        address: int = _sht.SHT4X_ADDRESS,
        serial: int = 0x0C1D5A3E,
    ) -> None:
        super().__init__(address, ambient)
        self.serial = serial
        self.crc_error = False
        self._answer: list[int] = []
        self._ready_at = 0.0
        self._last_raw: tuple[int, int] | None = None

    def _words(self, words: Sequence[int]) -> list[int]:
        out: list[int] = []
        for w in words:
            hi, lo = w >> 8 & 0xFF, w & 0xFF
            out += [hi, lo, _sht.crc8((hi, lo))]
        if self.crc_error:
            out[2] ^= 0x5A
        return out

    def write(self, data: bytes, at_s: float) -> None:
        """Take a command byte."""
        if len(data) != 1:
            raise ProtocolViolation(f"sht4x expects one command byte, got {data.hex()}")
        cmd = data[0]
        if cmd == _sht.CMD_MEASURE_HIGH:
            if not self.stuck or self._last_raw is None:
                a = self.ambient()
                raw_t = round((a.temperature_c + 45.0) * 65535.0 / 175.0)
                raw_rh = round((a.humidity_pct + 6.0) * 65535.0 / 125.0)
                self._last_raw = (min(max(raw_t, 0), 65535), min(max(raw_rh, 0), 65535))
            self._answer = self._words(self._last_raw)
            self._ready_at = at_s + self.CONVERSION_S
        elif cmd == _sht.CMD_SERIAL:
            self._answer = self._words((self.serial >> 16, self.serial & 0xFFFF))
            self._ready_at = at_s + 0.001
        elif cmd == _sht.CMD_SOFT_RESET:
            self._answer = []
            self._ready_at = at_s + 0.001
        else:
            raise ProtocolViolation(f"sht4x: unknown command 0x{cmd:02x}")

    def read(self, length: int, at_s: float) -> bytes:
        """Answer with the words of the last command."""
        # The SHT4x NACKs a read header while it is busy or has nothing to send.
        if at_s < self._ready_at or not self._answer:
            raise _nack()
        if length > len(self._answer):
            raise ProtocolViolation(f"sht4x: read of {length} bytes, {len(self._answer)} ready")
        out, self._answer = bytes(self._answer[:length]), []
        return out


class FakeTsl2591(_RegisterDevice):
    """A TSL2591: command byte 0xA0|reg, ID 0x50, ALS cycle of the configured ATIME.

    Attributes:
        ir_ratio: Channel 1 (IR) counts as a fraction of channel 0 (~0.25 for lamps).
    """

    def __init__(self, ambient: Callable[[], Ambient], address: int = _tsl.TSL2591_ADDRESS) -> None:
        super().__init__(address, ambient)
        self.regs[_tsl.REG_ID] = _tsl.TSL2591_ID
        self.ir_ratio = 0.25
        self._aen_at: float | None = None
        self._last: tuple[int, int] | None = None

    def register(self, command: int) -> int:
        """See `_RegisterDevice`."""
        if command & 0xE0 != _tsl.COMMAND:
            raise ProtocolViolation(f"tsl2591: command byte 0x{command:02x} lacks CMD|normal")
        return command & 0x1F

    def on_write(self, register: int, value: int, at_s: float) -> None:
        """See `_RegisterDevice`."""
        if register in (_tsl.REG_ID, _tsl.REG_STATUS) or register >= _tsl.REG_C0DATAL:
            raise ProtocolViolation(f"tsl2591: write to read-only register 0x{register:02x}")
        if register == _tsl.REG_ENABLE:
            on = value & (_tsl.ENABLE_PON | _tsl.ENABLE_AEN) == _tsl.ENABLE_PON | _tsl.ENABLE_AEN
            self._aen_at = at_s if on else None
        if register == _tsl.REG_CONTROL and self._aen_at is not None:
            self._aen_at = at_s  # a new setting restarts the integration
        self.regs[register] = value

    def _setting(self) -> tuple[float, float]:
        control = self.regs[_tsl.REG_CONTROL]
        gain = {v: k for k, v in _tsl.GAIN_CODES.items()}[control >> 4 & 0b11]
        return gain, 100.0 * ((control & 0b111) + 1)

    def on_read(self, register: int, at_s: float) -> None:
        """See `_RegisterDevice`."""
        gain, t_ms = self._setting()
        valid = self._aen_at is not None and at_s - self._aen_at >= t_ms / 1000.0
        self.regs[_tsl.REG_STATUS] = _tsl.STATUS_AVALID if valid else 0
        if register == _tsl.REG_C0DATAL and valid:
            if not self.stuck or self._last is None:
                # Invert lux = C0·(1 − r)²/cpl with C1 = r·C0.
                r = self.ir_ratio
                ch0 = self.ambient().lux * _tsl.counts_per_lux(gain, t_ms) / (1.0 - r) ** 2
                full = 36863 if t_ms <= 100.0 else 65535
                self._last = (min(round(ch0), full), min(round(r * ch0), full))
            c0, c1 = self._last
            self.regs[0x14:0x18] = bytes((c0 & 0xFF, c0 >> 8, c1 & 0xFF, c1 >> 8))


class FakeVeml7700(_RegisterDevice):
    """A VEML7700: 16-bit little-endian command-code registers, ALS at 0x04, WHITE at 0x05."""

    def __init__(
        self, ambient: Callable[[], Ambient], address: int = _veml.VEML7700_ADDRESS
    ) -> None:
        super().__init__(address, ambient)
        self.regs[0] = 0x01  # power-on default: shut down
        self._on_at: float | None = None
        self._last: int | None = None

    def register(self, command: int) -> int:
        """See `_RegisterDevice`."""
        if command > 0x06:
            raise ProtocolViolation(f"veml7700: no command code 0x{command:02x}")
        return command * 2  # each command code is one 16-bit register, LSB first

    def write(self, data: bytes, at_s: float) -> None:
        """See `_RegisterDevice`."""
        if data and len(data) not in (1, 3):
            raise ProtocolViolation(f"veml7700: writes are one 16-bit word, got {data.hex()}")
        super().write(data, at_s)
        if len(data) == 3 and data[0] == _veml.REG_CONF:
            shut = data[1] & _veml.SD_BIT
            self._on_at = None if shut else at_s

    def on_write(self, register: int, value: int, at_s: float) -> None:
        """See `_RegisterDevice`."""
        if register >= _veml.REG_ALS * 2:
            raise ProtocolViolation("veml7700: write to a read-only register")
        self.regs[register] = value

    def on_read(self, register: int, at_s: float) -> None:
        """See `_RegisterDevice`."""
        if register != _veml.REG_ALS * 2:
            return
        conf = self.regs[0] | self.regs[1] << 8
        gain = {v: k for k, v in _veml.GAIN_BITS.items()}[conf >> 11 & 0b11]
        it = {v: k for k, v in _veml.IT_BITS.items()}.get(conf >> 6 & 0b1111, 100.0)
        ready = self._on_at is not None and at_s - self._on_at >= it / 1000.0
        if ready and (not self.stuck or self._last is None):
            self._last = min(round(self.ambient().lux / _veml.resolution_lx(gain, it)), 65535)
        last = self._last or 0
        self.regs[8:10] = bytes((last & 0xFF, last >> 8))


# Trims of the BMP280 datasheet's worked example, with humidity trims of a typical part.
EXAMPLE_TRIMS = _bme.Calibration(
    T1=27504, T2=26435, T3=-1000, P1=36477, P2=-10685, P3=3024, P4=2855, P5=140, P6=-7,
    P7=15500, P8=-14600, P9=6000, H1=75, H2=362, H3=0, H4=313, H5=50, H6=30,
)  # fmt: skip


def _calibration_bytes(c: _bme.Calibration) -> tuple[bytes, bytes]:
    def s16(v: int) -> bytes:
        return (v & 0xFFFF).to_bytes(2, "little")

    tp = b"".join(s16(v) for v in (c.T1, c.T2, c.T3, c.P1, c.P2, c.P3, c.P4, c.P5, c.P6))
    tp += b"".join(s16(v) for v in (c.P7, c.P8, c.P9)) + bytes((0, c.H1))
    h = s16(c.H2) + bytes(
        (c.H3, (c.H4 >> 4) & 0xFF, (c.H4 & 0x0F) | (c.H5 & 0x0F) << 4, (c.H5 >> 4) & 0xFF)
    )
    return tp, h + bytes((c.H6 & 0xFF,))


def _invert(f: Callable[[int], float], target: float, lo: int, hi: int) -> int:
    """The integer in [lo, hi] where monotonic `f` comes closest to `target` (bisection)."""
    rising = f(hi) >= f(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (f(mid) < target) == rising:
            lo = mid
        else:
            hi = mid
    return lo if abs(f(lo) - target) <= abs(f(hi) - target) else hi


class FakeBme280(_RegisterDevice):
    """A BME280: chip id 0x60, trims at 0x88/0xE1, forced conversions of 9.3 ms."""

    CONVERSION_S = 0.0093

    def __init__(
        self,
        ambient: Callable[[], Ambient],
        address: int = _bme.BME280_ADDRESSES[0],
        calibration: _bme.Calibration = EXAMPLE_TRIMS,
        chip_id: int = _bme.BME280_CHIP_ID,
    ) -> None:
        super().__init__(address, ambient)
        self.calibration = calibration
        self.chip_id = chip_id
        self._reset()
        self._busy_until = 0.0
        self._pending = False

    def _reset(self) -> None:
        tp, h = _calibration_bytes(self.calibration)
        self.regs[_bme.REG_CALIB_TP : _bme.REG_CALIB_TP + 26] = tp
        self.regs[_bme.REG_CALIB_H : _bme.REG_CALIB_H + 7] = h
        self.regs[_bme.REG_ID] = self.chip_id
        self.regs[0xF2:0xF6] = bytes(4)
        # Reset values of the data registers: 0x80000 / 0x8000, "measurement skipped".
        self.regs[0xF7:0xFF] = bytes((0x80, 0, 0, 0x80, 0, 0, 0x80, 0))

    def on_write(self, register: int, value: int, at_s: float) -> None:
        """See `_RegisterDevice`."""
        if register == _bme.REG_RESET:
            if value == _bme.RESET_WORD:
                self._reset()
            return
        if register not in (_bme.REG_CTRL_HUM, _bme.REG_CTRL_MEAS, 0xF5):
            raise ProtocolViolation(f"bme280: write to read-only register 0x{register:02x}")
        self.regs[register] = value
        if register == _bme.REG_CTRL_MEAS and value & 0b11 in (0b01, 0b10):
            self._busy_until = at_s + self.CONVERSION_S
            self._pending = True

    def _convert(self) -> None:
        c = self.calibration
        a = self.ambient()
        top = (1 << 20) - 1
        adc_t = _invert(lambda x: _bme.compensate_t_int32(x, c)[0] / 100.0, a.temperature_c, 0, top)
        t_fine = _bme.compensate_t_int32(adc_t, c)[1]

        def p_hpa(x: int) -> float:
            return _bme.compensate_p_int64(x, t_fine, c) / 25600.0

        def h_pct(x: int) -> float:
            return _bme.compensate_h_int32(x, t_fine, c) / 1024.0

        adc_p = _invert(p_hpa, a.pressure_hpa, 0, top)
        adc_h = _invert(h_pct, a.humidity_pct, 0, 0xFFFF)
        hum_on = self.regs[_bme.REG_CTRL_HUM] & 0b111
        self.regs[0xF7:0xFA] = bytes((adc_p >> 12, adc_p >> 4 & 0xFF, (adc_p & 0xF) << 4))
        self.regs[0xFA:0xFD] = bytes((adc_t >> 12, adc_t >> 4 & 0xFF, (adc_t & 0xF) << 4))
        if hum_on:
            self.regs[0xFD:0xFF] = bytes((adc_h >> 8, adc_h & 0xFF))
        self.regs[_bme.REG_CTRL_MEAS] &= 0b11111100  # back to sleep mode

    def on_read(self, register: int, at_s: float) -> None:
        """See `_RegisterDevice`."""
        busy = at_s < self._busy_until
        self.regs[_bme.REG_STATUS] = _bme.STATUS_MEASURING if busy else 0
        if self._pending and not busy:
            self._pending = False
            if not self.stuck:
                self._convert()


class FakeI2CBus:
    """An I2C bus with fake devices on it, implementing `I2CBus`.

    Args:
        devices: The devices present.

    Attributes:
        elapsed_s: Conversion time spent by the drivers' `sleep` calls, s.
        log: The latest `LOG_SIZE` transactions, as (address, "w"|"r", bytes), oldest first
            (for tests; bounded because the twin runs for days under `appliance run`).
    """

    LOG_SIZE = 10_000

    def __init__(self, devices: Iterable[FakeDevice] = ()) -> None:
        self.devices: dict[int, FakeDevice] = {}
        for d in devices:
            self.attach(d)
        self.elapsed_s = 0.0
        self.log: deque[tuple[int, str, bytes]] = deque(maxlen=self.LOG_SIZE)

    def attach(self, device: FakeDevice) -> None:
        """Plug `device` in at its address."""
        self.devices[device.address] = device

    def detach(self, address: int) -> None:
        """Unplug the device at `address`."""
        self.devices.pop(address, None)

    def sleep(self, seconds: float) -> None:
        """The drivers' wait: advances the conversion counter, never real time."""
        self.elapsed_s += max(0.0, seconds)

    def _device(self, address: int) -> FakeDevice:
        dev = self.devices.get(address)
        if dev is None or dev.nack:
            raise _nack()
        dev.transactions += 1
        return dev

    def _write(self, address: int, data: bytes) -> None:
        self._device(address).write(data, self.elapsed_s)
        self.log.append((address, "w", data))

    def _read(self, address: int, length: int) -> bytes:
        data = self._device(address).read(length, self.elapsed_s)
        self.log.append((address, "r", data))
        return data

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        """SMBus write byte data."""
        self._write(i2c_addr, bytes((register, value)))

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        """SMBus read byte data."""
        self._write(i2c_addr, bytes((register,)))
        return self._read(i2c_addr, 1)[0]

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """I2C block read: register pointer write, repeated start, `length` bytes."""
        if not 1 <= length <= 32:
            raise ValueError("smbus2 reads 1 to 32 bytes per block")
        self._write(i2c_addr, bytes((register,)))
        return list(self._read(i2c_addr, length))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        """I2C block write."""
        self._write(i2c_addr, bytes((register, *data)))

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Combined transaction of `smbus2.i2c_msg` messages; read messages are filled in."""
        for msg in i2c_msgs:
            if msg.flags & I2C_M_RD:
                data = self._read(msg.addr, msg.len)
                ctypes.memmove(msg.buf, data, len(data))
            else:
                self._write(msg.addr, bytes(msg))


def simulated_bus(
    clock: Callable[[], float],
    night: BedroomNight | None = None,
    parts: Sequence[str] = ("sht4x", "tsl2591"),
) -> FakeI2CBus:
    """The simulated twin of the bedroom's I2C bus.

    Args:
        clock: Returns the current time, UTC epoch seconds (the daemon's clock).
        night: The bedroom model; None = `BedroomNight()` in UTC.
        parts: Which fakes to plug in: "sht4x", "bme280", "tsl2591", "veml7700".

    Returns:
        A bus whose `sleep` the drivers must be given.
    """
    model = night or BedroomNight()

    def ambient() -> Ambient:
        return model.at(clock())

    makers: dict[str, Callable[[], FakeDevice]] = {
        "sht4x": lambda: FakeSht4x(ambient),
        "bme280": lambda: FakeBme280(ambient),
        "tsl2591": lambda: FakeTsl2591(ambient),
        "veml7700": lambda: FakeVeml7700(ambient),
    }
    unknown = set(parts) - set(makers)
    if unknown:
        raise ValueError(f"unknown simulated parts: {sorted(unknown)}")
    return FakeI2CBus(makers[p]() for p in parts)
