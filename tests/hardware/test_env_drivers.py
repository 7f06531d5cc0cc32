"""The environment drivers against datasheet values and their register-level fakes."""

import errno
from datetime import UTC, datetime

import pytest

from hardware.environment import (
    Bme280,
    SensorCrcError,
    SensorIdMismatch,
    SensorNotResponding,
    SensorRangeError,
    Sht4x,
    Tsl2591,
    Veml7700,
)
from hardware.environment import bme280 as bme
from hardware.environment.fakes import (
    Ambient,
    BedroomNight,
    FakeBme280,
    FakeI2CBus,
    FakeSht4x,
    FakeTsl2591,
    FakeVeml7700,
    simulated_bus,
)
from hardware.environment.sht4x import crc8, humidity_pct, temperature_c
from hardware.environment.tsl2591 import lux_from_counts
from hardware.environment.veml7700 import config_word, corrected_lux, resolution_lx

# The BMP280 datasheet's worked example (3.12): same T/P formulas as the BME280.
EXAMPLE = bme.Calibration(
    T1=27504, T2=26435, T3=-1000, P1=36477, P2=-10685, P3=3024, P4=2855, P5=140, P6=-7,
    P7=15500, P8=-14600, P9=6000, H1=75, H2=362, H3=0, H4=313, H5=50, H6=30,
)  # fmt: skip


class Room:
    """A settable ambient for the fakes."""

    def __init__(self, **kw: float) -> None:
        self.a = Ambient(**{"temperature_c": 19.0, "humidity_pct": 45.0, "pressure_hpa": 1013.0,
                            "lux": 100.0, **kw})  # fmt: skip

    def __call__(self) -> Ambient:
        return self.a

    def set(self, **kw: float) -> None:
        d = {
            f: getattr(self.a, f) for f in ("temperature_c", "humidity_pct", "pressure_hpa", "lux")
        }
        self.a = Ambient(**{**d, **kw})


# ---- SHT4x -------------------------------------------------------------------------------


def test_sht4x_crc_matches_the_datasheet_example():
    assert crc8([0xBE, 0xEF]) == 0x92


def test_sht4x_conversion_formulas_at_the_ends_and_midscale():
    assert temperature_c(0) == pytest.approx(-45.0)
    assert temperature_c(65535) == pytest.approx(130.0)
    assert temperature_c(0x6666) == pytest.approx(-45.0 + 175.0 * 26214 / 65535)
    assert humidity_pct(0) == 0.0  # -6 %RH cropped
    assert humidity_pct(65535) == 100.0  # 119 %RH cropped
    assert humidity_pct(32768) == pytest.approx(-6.0 + 125.0 * 32768 / 65535)


def test_sht4x_reads_the_fake_over_i2c_rdwr():
    room = Room(temperature_c=18.5, humidity_pct=47.0)
    bus = FakeI2CBus([FakeSht4x(room)])
    s = Sht4x(bus, sleep=bus.sleep)
    assert s.probe() == "SHT4x serial 0x0c1d5a3e"
    r = s.read()
    assert r.temperature_c == pytest.approx(18.5, abs=0.003)
    assert r.humidity_pct == pytest.approx(47.0, abs=0.002)
    assert r.pressure_hpa is None
    # command write, then a 6-byte read (2 words + CRC each)
    assert bus.log[-2] == (0x44, "w", b"\xfd")
    assert len(bus.log[-1][2]) == 6


def test_sht4x_read_before_the_conversion_is_nacked():
    bus = FakeI2CBus([FakeSht4x(Room())])
    s = Sht4x(bus, sleep=lambda _s: None)  # a driver that does not wait
    with pytest.raises(SensorNotResponding, match="NACK"):
        s.read()


def test_sht4x_crc_error_and_missing_part():
    dev = FakeSht4x(Room())
    bus = FakeI2CBus([dev])
    s = Sht4x(bus, sleep=bus.sleep)
    dev.crc_error = True
    with pytest.raises(SensorCrcError, match="word 0"):
        s.read()
    bus.detach(0x44)
    with pytest.raises(SensorNotResponding) as e:
        s.probe()
    assert e.value.errno_code == errno.EREMOTEIO
    assert isinstance(e.value, OSError)


def test_sht4x_stuck_fake_repeats_its_raw_words():
    room = Room()
    dev = FakeSht4x(room)
    bus = FakeI2CBus([dev])
    s = Sht4x(bus, sleep=bus.sleep)
    first = s.read()
    dev.stuck = True
    room.set(temperature_c=25.0)
    assert s.read().raw == first.raw
    dev.stuck = False
    assert s.read().temperature_c == pytest.approx(25.0, abs=0.003)


# ---- BME280 ------------------------------------------------------------------------------


def test_bme280_integer_compensation_matches_the_worked_example():
    t_centi, t_fine = bme.compensate_t_int32(519888, EXAMPLE)
    assert t_fine == 128422
    assert t_centi == 2508  # 25.08 °C
    assert bme.compensate_p_int64(415148, t_fine, EXAMPLE) / 256 == pytest.approx(100653, abs=1)


def test_bme280_double_compensation_matches_the_worked_example():
    t, t_fine = bme.compensate_t_double(519888, EXAMPLE)
    assert t == pytest.approx(25.08, abs=0.005)
    assert t_fine == 128422
    # The example gives 100653.27 Pa.
    assert bme.compensate_p_double(415148, t_fine, EXAMPLE) == pytest.approx(100653.27, abs=0.05)


@pytest.mark.parametrize("adc_h", [20000, 27950, 32000, 40000])
def test_bme280_integer_and_double_humidity_agree(adc_h):
    _, t_fine = bme.compensate_t_int32(519888, EXAMPLE)
    h_int = bme.compensate_h_int32(adc_h, t_fine, EXAMPLE) / 1024.0
    assert h_int == pytest.approx(bme.compensate_h_double(adc_h, t_fine, EXAMPLE), abs=0.01)


def test_bme280_trims_decode_signed_12_bit_h4_h5():
    tp = bytes(25) + bytes((75,))
    # H2 = 362, H3 = 0, H4 = -3 (0xFF, 0xD), H5 = -2 (0xE, 0xFF), H6 = -1
    h = bytes((362 & 0xFF, 362 >> 8, 0, 0xFF, 0xED, 0xFF, 0xFF))
    c = bme.parse_calibration(tp, h)
    assert (c.H1, c.H2, c.H3, c.H4, c.H5, c.H6) == (75, 362, 0, -3, -2, -1)


def test_bme280_reads_the_fake_in_forced_mode():
    room = Room(temperature_c=21.3, humidity_pct=52.0, pressure_hpa=998.5)
    bus = FakeI2CBus([FakeBme280(room, address=0x77)])
    s = Bme280(bus, 0x77, sleep=bus.sleep)
    assert "0x60" in s.probe()
    assert s.calibration == EXAMPLE
    r = s.read()
    assert r.temperature_c == pytest.approx(21.3, abs=0.01)
    assert r.humidity_pct == pytest.approx(52.0, abs=0.01)
    assert r.pressure_hpa == pytest.approx(998.5, abs=0.01)


def test_bme280_rejects_a_bmp280_and_skipped_measurements():
    bus = FakeI2CBus([FakeBme280(Room(), chip_id=0x58)])
    with pytest.raises(SensorIdMismatch, match="BMP280"):
        Bme280(bus, sleep=bus.sleep).probe()
    dev = FakeBme280(Room())
    bus = FakeI2CBus([dev])
    s = Bme280(bus, sleep=bus.sleep)
    s.probe()
    dev.stuck = True  # never converts: the data registers keep their reset values
    with pytest.raises(SensorRangeError, match="skipped"):
        s.read()


# ---- TSL2591 -----------------------------------------------------------------------------


def test_tsl2591_lux_equation():
    # cpl = 100 ms * 25 / 408 = 6.127; (1000 - 200) * (1 - 0.2) / cpl = 104.45 lx
    assert lux_from_counts(1000, 200, 25.0, 100.0) == pytest.approx(640 * 408 / 2500)
    assert lux_from_counts(0, 0, 1.0, 100.0) == 0.0
    assert lux_from_counts(100, 150, 1.0, 100.0) == 0.0  # IR above full: clamp, not negative


@pytest.mark.parametrize("lux", [0.001, 0.01, 1.0, 200.0, 5000.0, 80000.0])
def test_tsl2591_autoranges_from_a_dark_room_to_daylight(lux):
    room = Room(lux=lux)
    bus = FakeI2CBus([FakeTsl2591(room)])
    s = Tsl2591(bus, sleep=bus.sleep)
    assert s.probe() == "TSL2591 (ID 0x50)"
    r = s.read()
    rel = 0.12 if lux <= 0.001 else 0.01  # ~14 counts per mlx at the top of the ladder
    assert r.lux == pytest.approx(lux, rel=rel)
    assert s.read().gain == r.gain  # a steady room keeps its setting


def test_tsl2591_wrong_id_and_saturation():
    dev = FakeTsl2591(Room())
    dev.regs[0x12] = 0x30
    bus = FakeI2CBus([dev])
    with pytest.raises(SensorIdMismatch, match="0x30"):
        Tsl2591(bus, sleep=bus.sleep).probe()
    bus = FakeI2CBus([FakeTsl2591(Room(lux=500000.0))])
    with pytest.raises(SensorRangeError, match="saturated"):
        Tsl2591(bus, sleep=bus.sleep).read()


def test_tsl2591_no_valid_conversion_without_waiting():
    bus = FakeI2CBus([FakeTsl2591(Room())])
    with pytest.raises(Exception, match="AVALID"):
        Tsl2591(bus, sleep=lambda _s: None).read()


# ---- VEML7700 ----------------------------------------------------------------------------


def test_veml7700_resolution_table_and_config_bits():
    assert resolution_lx(2.0, 800.0) == pytest.approx(0.0042)
    assert resolution_lx(0.125, 25.0) == pytest.approx(2.1504)
    assert resolution_lx(1.0, 100.0) == pytest.approx(0.0672)
    assert config_word(0.125, 100.0) == 0b10 << 11
    assert config_word(2.0, 800.0, shutdown=True) == 0b01 << 11 | 0b0011 << 6 | 1
    assert config_word(0.25, 25.0) == 0b11 << 11 | 0b1100 << 6


def test_veml7700_non_linearity_correction():
    assert corrected_lux(0.0) == 0.0
    x = 10000.0
    expected = 6.0135e-13 * x**4 - 9.3924e-9 * x**3 + 8.1488e-5 * x**2 + 1.0023 * x
    assert corrected_lux(x) == pytest.approx(expected)
    assert corrected_lux(100.0) == pytest.approx(100.23 + 0.81, rel=1e-3)


@pytest.mark.parametrize("lux", [0.05, 5.0, 50.0])
def test_veml7700_autoranges_in_the_linear_range(lux):
    bus = FakeI2CBus([FakeVeml7700(Room(lux=lux))])
    s = Veml7700(bus, sleep=bus.sleep)
    s.probe()
    r = s.read()
    # at least the application note's 100 counts, unless already at its most sensitive
    assert r.raw[0] >= 100 or (r.gain, r.integration_ms) == (2.0, 800.0)
    if lux <= 5.0:
        assert r.gain >= 1.0  # low light is measured at the high gains
    # 0.05 lx is 12 counts at 0.0042 lx/count: why the TSL2591 is the dark-room choice
    assert r.lux == pytest.approx(lux, rel=0.1 if lux < 0.1 else 0.02)


def test_veml7700_probe_needs_the_config_to_read_back():
    dev = FakeVeml7700(Room())
    bus = FakeI2CBus([dev])
    dev.on_write = lambda register, value, at_s: None  # type: ignore[method-assign]
    with pytest.raises(SensorIdMismatch, match="reads"):
        Veml7700(bus, sleep=bus.sleep).probe()


# ---- the simulated twin ------------------------------------------------------------------


def _utc(h: int, m: int = 0) -> float:
    return datetime(2026, 1, 10, h, m, tzinfo=UTC).timestamp()


def test_bedroom_night_is_deterministic_and_plausible():
    night = BedroomNight()
    assert night.at(_utc(3)) == night.at(_utc(3))
    assert night.at(_utc(22)).temperature_c == pytest.approx(20.0, abs=0.05)
    assert night.at(_utc(6)).temperature_c == pytest.approx(18.0, abs=0.05)
    assert night.at(_utc(21)).lux == pytest.approx(200.0, rel=0.02)
    assert night.at(_utc(2)).lux == pytest.approx(0.01, rel=0.02)
    assert 0.01 < night.at(_utc(6, 30)).lux < 50.0  # dawn
    assert all(40.0 < night.at(_utc(h)).humidity_pct < 50.0 for h in range(24))


def test_simulated_bus_answers_the_real_drivers():
    now = [_utc(2)]
    bus = simulated_bus(lambda: now[0])
    sht, tsl = Sht4x(bus, sleep=bus.sleep), Tsl2591(bus, sleep=bus.sleep)
    sht.probe()
    tsl.probe()
    assert tsl.read().lux == pytest.approx(0.01, rel=0.05)
    now[0] = _utc(21)
    assert tsl.read().lux == pytest.approx(200.0, rel=0.05)
    assert sht.read().temperature_c == pytest.approx(
        BedroomNight().at(now[0]).temperature_c, abs=0.01
    )
    with pytest.raises(ValueError, match="unknown"):
        simulated_bus(lambda: 0.0, parts=("sht99",))
