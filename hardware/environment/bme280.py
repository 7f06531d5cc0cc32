"""Bosch BME280 temperature, humidity and pressure sensor on I2C, in forced mode.

Each part carries its own trimming parameters; the raw 20-bit temperature and pressure and 16-bit
humidity readings only become physical values through Bosch's compensation formulas, which are
implemented here in both the integer form (datasheet 4.2.3, used for readings) and the
double-precision form (appendix 8.1, a cross-check).

References:
    Bosch Sensortec, "BME280 Combined humidity and pressure sensor", datasheet
    BST-BME280-DS002-15 rev. 1.6 (2018): 4.2.2 trimming parameters (0x88–0xA1, 0xE1–0xE7,
    dig_H4/dig_H5 as signed 12-bit), 4.2.3 and 8.1 compensation formulas, 5.4 registers (0xD0
    id = 0x60, 0xE0 reset = 0xB6, 0xF2 ctrl_hum, 0xF3 status: measuring bit 3 and im_update
    bit 0, 0xF4 ctrl_meas, 0xF7–0xFE data), 9.1 measurement time (9.3 ms max at ×1 oversampling).
    Bosch Sensortec, "BMP280 Digital Pressure Sensor", datasheet BST-BMP280-DS001 (3.12, the
    worked compensation example with the same temperature/pressure formulas).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hardware.environment._bus import (
    ClimateReading,
    I2CBus,
    SensorIdMismatch,
    SensorNotResponding,
    SensorRangeError,
)

__all__ = [
    "BME280_ADDRESSES",
    "BME280_CHIP_ID",
    "Bme280",
    "Calibration",
    "compensate_h_double",
    "compensate_h_int32",
    "compensate_p_double",
    "compensate_p_int64",
    "compensate_t_double",
    "compensate_t_int32",
    "parse_calibration",
]

log = logging.getLogger(__name__)

BME280_ADDRESSES = (0x76, 0x77)
"""SDO to GND gives 0x76, SDO to VDDIO 0x77."""
BME280_CHIP_ID = 0x60
BMP280_CHIP_ID = 0x58
REG_CALIB_TP = 0x88
REG_CALIB_H = 0xE1
REG_ID = 0xD0
REG_RESET = 0xE0
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_DATA = 0xF7
RESET_WORD = 0xB6
STATUS_MEASURING = 0x08
STATUS_IM_UPDATE = 0x01
CTRL_HUM_X1 = 0b001
CTRL_MEAS_FORCED_X1 = 0b001 << 5 | 0b001 << 2 | 0b01
"""Temperature and pressure oversampling ×1, forced mode."""
MEASURE_WAIT_S = 0.0105
"""Datasheet 9.1: 1.25 + 2.3 + (2.3 + 0.575) + (2.3 + 0.575) = 9.3 ms at ×1, plus margin."""
SKIPPED_20 = 0x80000
SKIPPED_16 = 0x8000


@dataclass(frozen=True, slots=True)
class Calibration:
    """The part's trimming parameters (datasheet table 16, names as there)."""

    T1: int
    T2: int
    T3: int
    P1: int
    P2: int
    P3: int
    P4: int
    P5: int
    P6: int
    P7: int
    P8: int
    P9: int
    H1: int
    H2: int
    H3: int
    H4: int
    H5: int
    H6: int


def _u16(b: Sequence[int], i: int) -> int:
    return b[i] | b[i + 1] << 8


def _s16(b: Sequence[int], i: int) -> int:
    v = _u16(b, i)
    return v - 0x10000 if v & 0x8000 else v


def _s8(v: int) -> int:
    return v - 0x100 if v & 0x80 else v


def parse_calibration(tp: Sequence[int], h: Sequence[int]) -> Calibration:
    """Decode the trimming registers.

    Args:
        tp: The 26 bytes at 0x88–0xA1 (0xA1 is dig_H1).
        h: The 7 bytes at 0xE1–0xE7.
    """
    return Calibration(
        T1=_u16(tp, 0),
        T2=_s16(tp, 2),
        T3=_s16(tp, 4),
        P1=_u16(tp, 6),
        P2=_s16(tp, 8),
        P3=_s16(tp, 10),
        P4=_s16(tp, 12),
        P5=_s16(tp, 14),
        P6=_s16(tp, 16),
        P7=_s16(tp, 18),
        P8=_s16(tp, 20),
        P9=_s16(tp, 22),
        H1=tp[25],
        H2=_s16(h, 0),
        H3=h[2],
        # 12-bit signed values sharing 0xE5's nibbles; the sign comes from the whole byte.
        H4=_s8(h[3]) * 16 | (h[4] & 0x0F),
        H5=_s8(h[5]) * 16 | (h[4] >> 4),
        H6=_s8(h[6]),
    )


def compensate_t_int32(adc_t: int, c: Calibration) -> tuple[int, int]:
    """Temperature in 0.01 °C and t_fine (datasheet 4.2.3)."""
    var1 = (((adc_t >> 3) - (c.T1 << 1)) * c.T2) >> 11
    d = (adc_t >> 4) - c.T1
    var2 = (((d * d) >> 12) * c.T3) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def compensate_p_int64(adc_p: int, t_fine: int, c: Calibration) -> int:
    """Pressure in Pa as Q24.8 (value / 256 = Pa), the 64-bit form (datasheet 4.2.3)."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * c.P6
    var2 += (var1 * c.P5) << 17
    var2 += c.P4 << 35
    var1 = ((var1 * var1 * c.P3) >> 8) + ((var1 * c.P2) << 12)
    var1 = (((1 << 47) + var1) * c.P1) >> 33
    if var1 == 0:
        return 0  # the datasheet's guard against division by zero
    p = 1048576 - adc_p
    p = _cdiv(((p << 31) - var2) * 3125, var1)
    var1 = (c.P9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (c.P8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (c.P7 << 4)


def compensate_h_int32(adc_h: int, t_fine: int, c: Calibration) -> int:
    """Relative humidity in Q22.10 (value / 1024 = %RH), clamped to 0–100 % (datasheet 4.2.3)."""
    v = t_fine - 76800
    a = (((adc_h << 14) - (c.H4 << 20) - (c.H5 * v)) + 16384) >> 15
    b = (((((v * c.H6) >> 10) * (((v * c.H3) >> 11) + 32768)) >> 10) + 2097152) * c.H2 + 8192
    v = a * (b >> 14)
    v -= ((((v >> 15) * (v >> 15)) >> 7) * c.H1) >> 4
    v = min(max(v, 0), 419430400)
    return v >> 12


def compensate_t_double(adc_t: int, c: Calibration) -> tuple[float, int]:
    """Temperature in °C and t_fine (datasheet 8.1)."""
    var1 = (adc_t / 16384.0 - c.T1 / 1024.0) * c.T2
    d = adc_t / 131072.0 - c.T1 / 8192.0
    var2 = d * d * c.T3
    return (var1 + var2) / 5120.0, int(var1 + var2)


def compensate_p_double(adc_p: int, t_fine: int, c: Calibration) -> float:
    """Pressure in Pa (datasheet 8.1)."""
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * c.P6 / 32768.0
    var2 = var2 + var1 * c.P5 * 2.0
    var2 = var2 / 4.0 + c.P4 * 65536.0
    var1 = (c.P3 * var1 * var1 / 524288.0 + c.P2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * c.P1
    if var1 == 0.0:
        return 0.0
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = c.P9 * p * p / 2147483648.0
    var2 = p * c.P8 / 32768.0
    return p + (var1 + var2 + c.P7) / 16.0


def compensate_h_double(adc_h: int, t_fine: int, c: Calibration) -> float:
    """Relative humidity in %, clamped to 0–100 (datasheet 8.1)."""
    v = t_fine - 76800.0
    v = (adc_h - (c.H4 * 64.0 + c.H5 / 16384.0 * v)) * (
        c.H2 / 65536.0 * (1.0 + c.H6 / 67108864.0 * v * (1.0 + c.H3 / 67108864.0 * v))
    )
    v = v * (1.0 - c.H1 * v / 524288.0)
    return min(100.0, max(0.0, v))


class Bme280:
    """A BME280 on `bus`, measured in forced mode (one conversion per `read`, then sleep).

    Args:
        bus: The I2C bus.
        address: 0x76 or 0x77.
        sleep: Blocks for the conversion time, seconds.
    """

    name = "bme280"
    role = "climate"

    def __init__(
        self,
        bus: I2CBus,
        address: int = BME280_ADDRESSES[0],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus = bus
        self.address = address
        self._sleep = sleep
        self.calibration: Calibration | None = None

    def _read(self, register: int, length: int) -> list[int]:
        try:
            return self.bus.read_i2c_block_data(self.address, register, length)
        except OSError as e:
            raise SensorNotResponding(self.name, self.address, e) from e

    def _write(self, register: int, value: int) -> None:
        try:
            self.bus.write_byte_data(self.address, register, value)
        except OSError as e:
            raise SensorNotResponding(self.name, self.address, e) from e

    def probe(self) -> str:
        """Check the chip id, reset the part and read its trimming parameters.

        Raises:
            SensorNotResponding: nothing ACKs at the address.
            SensorIdMismatch: the chip id is not 0x60 (a BMP280, 0x58, has no humidity).
        """
        (chip_id,) = self._read(REG_ID, 1)
        if chip_id != BME280_CHIP_ID:
            what = " (a BMP280: no humidity)" if chip_id == BMP280_CHIP_ID else ""
            raise SensorIdMismatch(
                self.name, self.address, f"chip id 0x{chip_id:02x}, not 0x60{what}"
            )
        self._write(REG_RESET, RESET_WORD)
        self._sleep(0.002)
        for _ in range(5):
            (status,) = self._read(REG_STATUS, 1)
            if not status & STATUS_IM_UPDATE:
                break
            self._sleep(0.002)
        tp, h = self._read(REG_CALIB_TP, 26), self._read(REG_CALIB_H, 7)
        self.calibration = parse_calibration(tp, h)
        return f"BME280 (chip id 0x60) at 0x{self.address:02x}"

    def _calibrated(self) -> Calibration:
        if self.calibration is None:
            raise SensorRangeError(self.name, self.address, "no trimming parameters")
        return self.calibration

    def read(self) -> ClimateReading:
        """Run one forced conversion (blocks ~11 ms).

        Raises:
            SensorNotResponding: NACK or bus error.
            SensorRangeError: a measurement was skipped (the part was reset behind our back).
        """
        c = self.calibration
        if c is None:
            self.probe()
            c = self._calibrated()
        # ctrl_hum only takes effect with the following write to ctrl_meas (datasheet 5.4.3).
        self._write(REG_CTRL_HUM, CTRL_HUM_X1)
        self._write(REG_CTRL_MEAS, CTRL_MEAS_FORCED_X1)
        self._sleep(MEASURE_WAIT_S)
        for _ in range(3):
            (status,) = self._read(REG_STATUS, 1)
            if not status & STATUS_MEASURING:
                break
            self._sleep(0.005)
        d = self._read(REG_DATA, 8)
        adc_p = d[0] << 12 | d[1] << 4 | d[2] >> 4
        adc_t = d[3] << 12 | d[4] << 4 | d[5] >> 4
        adc_h = d[6] << 8 | d[7]
        if SKIPPED_20 in (adc_p, adc_t) or adc_h == SKIPPED_16:
            # The reset values: the part lost its configuration, so read the trims again.
            self.calibration = None
            raise SensorRangeError(self.name, self.address, "measurement skipped (reset values)")
        t_centi, t_fine = compensate_t_int32(adc_t, c)
        p_q8 = compensate_p_int64(adc_p, t_fine, c)
        h_q10 = compensate_h_int32(adc_h, t_fine, c)
        raw = (adc_t, adc_p, adc_h)
        return ClimateReading(t_centi / 100.0, h_q10 / 1024.0, p_q8 / 25600.0, raw)
