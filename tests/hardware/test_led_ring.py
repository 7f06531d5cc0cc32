"""LED ring drivers: the recording twin, the SPI encoding against WS2812 timing, write errors."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from appliance.clock import VirtualClock
from appliance.errors import HardwareError
from hardware.light.ring import (
    SPI_RESET_BYTES,
    SPI_SPEED_HZ,
    LedRing,
    SimulatedRing,
    SpiRing,
    Ws281xRing,
    encode_ws2812_spi,
)

# WS2812B datasheet (V5), ns: T0H 400, T1H 800, T0L 850, T1L 450, each ±150; reset > 280 µs.
T0H, T1H, T0L, T1L, TOL = 400.0, 800.0, 850.0, 450.0, 150.0
RESET_NS = 280_000.0


class FakeSpi:
    """The far end of spidev: records speed, mode and every transfer."""

    def __init__(self, fail: int = 0) -> None:
        self.max_speed_hz = 0
        self.mode = -1
        self.writes: list[bytes] = []
        self.fail = fail
        self.closed = False

    def writebytes2(self, data: bytes) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise OSError(5, "Input/output error")
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True


def test_simulated_ring_records_every_frame_with_its_time() -> None:
    clock = VirtualClock(1000.0)
    ring = SimulatedRing(3, clock)
    assert isinstance(ring, LedRing)
    f = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.uint8)
    ring.show(f)
    f[0, 0] = 99  # the record is a copy
    clock.advance(0.5)
    ring.off()
    ring.close()
    assert [t for t, _ in ring.frames] == [1000.0, 1000.5, 1000.5]
    assert ring.frames[0][1][0, 0] == 1
    assert np.all(ring.frames[1][1] == 0) and ring.closed
    with pytest.raises(ValueError, match="uint8"):
        ring.show(np.zeros((3, 3)))


def test_spi_encoding_is_byte_exact() -> None:
    # one LED R=0xFF G=0x00 B=0x81, sent G R B, each bit as 100 (0) or 110 (1)
    data = encode_ws2812_spi(np.array([[0xFF, 0x00, 0x81]], dtype=np.uint8))
    g = bytes([0b10010010, 0b01001001, 0b00100100])  # 0x00: 100 x 8
    r = bytes([0b11011011, 0b01101101, 0b10110110])  # 0xFF: 110 x 8
    b = bytes([0b11010010, 0b01001001, 0b00100110])  # 0x81: 110 100 100 100 100 100 100 110
    assert data == g + r + b + bytes(SPI_RESET_BYTES)
    two = encode_ws2812_spi(np.array([[0, 0, 0], [0xFF, 0xFF, 0xFF]], dtype=np.uint8))
    assert two == g * 3 + r * 3 + bytes(SPI_RESET_BYTES)


def _runs(data: bytes) -> list[tuple[int, int]]:
    """(level, length in SPI bits) of the MOSI waveform."""
    bits = "".join(f"{b:08b}" for b in data)
    runs: list[tuple[int, int]] = []
    for ch in bits:
        if runs and runs[-1][0] == int(ch):
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((int(ch), 1))
    return runs


def test_spi_waveform_meets_the_ws2812_timing() -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, size=(24, 3), dtype=np.uint8)
    data = encode_ws2812_spi(frame)
    bit_ns = 1e9 / SPI_SPEED_HZ
    # decode the waveform: every WS bit is one high pulse and one low gap of allowed widths
    runs = _runs(data)
    latch = runs.pop()  # the last bit's low is the start of the latch
    assert latch[0] == 0 and (latch[1] - 2) * bit_ns > RESET_NS
    bits: list[int] = []
    for k in range(0, len(runs), 2):
        (hi_level, n_high), low = runs[k], runs[k + 1] if k + 1 < len(runs) else None
        assert hi_level == 1
        high_ns = n_high * bit_ns
        bit = 0 if abs(high_ns - T0H) <= TOL else 1
        assert abs(high_ns - (T0H, T1H)[bit]) <= TOL
        if low is not None:
            low_ns = low[1] * bit_ns
            assert abs(low_ns - (T0L, T1L)[bit]) <= TOL
            assert abs(high_ns + low_ns - 1250.0) <= 600.0
        bits.append(bit)
    grb = frame[:, [1, 0, 2]].reshape(-1)
    assert bits == [int(c) for v in grb for c in f"{v:08b}"]


def test_spi_ring_writes_one_transfer_per_frame_at_2_4_mhz() -> None:
    spi = FakeSpi()
    ring = SpiRing(2, spi)
    assert isinstance(ring, LedRing)
    assert spi.max_speed_hz == 2_400_000 and spi.mode == 0
    f = np.array([[0xFF, 0x00, 0x81], [0, 0, 0]], dtype=np.uint8)
    ring.show(f)
    assert spi.writes == [encode_ws2812_spi(f)]
    assert len(spi.writes[0]) == 2 * 9 + SPI_RESET_BYTES
    ring.close()
    assert spi.writes[-1] == encode_ws2812_spi(np.zeros((2, 3), dtype=np.uint8)) and spi.closed
    with pytest.raises(ValueError, match="n_leds"):
        SpiRing(500, FakeSpi())


def test_spi_write_error_is_reported_never_raised() -> None:
    spi = FakeSpi(fail=2)
    ring = SpiRing(4, spi)
    f = np.full((4, 3), 7, dtype=np.uint8)
    ring.show(f)
    ring.show(f)
    h = ring.health
    assert not h.ok and h.write_failures == 2 and "Input/output error" in h.last_error
    ring.show(f)
    assert ring.health.ok and ring.health.write_failures == 2
    assert spi.writes == [encode_ws2812_spi(f)]


def test_spi_ring_without_spidev_is_a_hardware_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_spidev(name: str, *a: Any, **k: Any) -> Any:
        if name == "spidev":
            raise ImportError("no spidev")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_spidev)
    with pytest.raises(HardwareError, match="spidev"):
        SpiRing(4)


class _FakeStrip:
    def __init__(self, *args: Any) -> None:
        self.args = args
        self.pixels: dict[int, int] = {}
        self.shown: list[dict[int, int]] = []
        self.fail_show = 0
        self.begun = False

    def begin(self) -> None:
        self.begun = True

    def setPixelColor(self, i: int, c: int) -> None:  # noqa: N802 - the library's name
        self.pixels[i] = c

    def show(self) -> None:
        if self.fail_show:
            self.fail_show -= 1
            raise RuntimeError("ws2811_render failed with code -13")
        self.shown.append(dict(self.pixels))


def _fake_ws281x() -> tuple[types.SimpleNamespace, list[_FakeStrip]]:
    strips: list[_FakeStrip] = []

    def make(*args: Any) -> _FakeStrip:
        strips.append(_FakeStrip(*args))
        return strips[-1]

    module = types.SimpleNamespace(PixelStrip=make, Color=lambda r, g, b: (r << 16) | (g << 8) | b)
    return module, strips


def test_ws281x_ring_sets_pixels_and_reports_render_errors() -> None:
    module, strips = _fake_ws281x()
    ring = Ws281xRing(2, 18, module=module)
    strip = strips[0]
    assert strip.begun and strip.args[:2] == (2, 18)
    ring.show(np.array([[1, 2, 3], [255, 0, 16]], dtype=np.uint8))
    assert strip.shown == [{0: 0x010203, 1: 0xFF0010}]
    strip.fail_show = 1
    ring.off()
    assert not ring.health.ok and "code -13" in ring.health.last_error
    ring.off()
    assert ring.health.ok and strip.shown[-1] == {0: 0, 1: 0}
