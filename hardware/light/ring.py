"""The LED ring: an interface, a recording twin, and the two drivers (PWM/DMA and SPI).

- `SimulatedRing` records every frame with the injected clock's time.
- `Ws281xRing` drives WS2812/SK6812 on a Pi 1–4 through rpi-ws281x (`pi` extra, imported when
  the ring opens). rpi-ws281x does not support the Pi 5.
- `SpiRing` drives the same LEDs from an SPI MOSI pin (any Pi, and the only way on a Pi 5):
  each WS2812 bit becomes three SPI bits at 2.4 MHz (`100` for 0, `110` for 1), see
  `encode_ws2812_spi`. `spidev` (`pi` extra) is imported when the ring opens.

A failed write is never raised into the daemon: `show` and `off` log the first failure, count
them in `health`, and try again on the next frame.

References:
    Worldsemi, WS2812B intelligent control LED integrated light source, datasheet (V5):
    T0H 0.4 µs, T1H 0.8 µs, T0L 0.85 µs, T1L 0.45 µs, each ±150 ns; reset (latch) > 50 µs
    (WS2812B-V5: > 280 µs); data sent G, R, B, most significant bit first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "SPI_BITS_PER_WS_BIT",
    "SPI_RESET_BYTES",
    "SPI_SPEED_HZ",
    "LedRing",
    "RingHealth",
    "SimulatedRing",
    "SpiRing",
    "SpiTransport",
    "Ws281xRing",
    "encode_ws2812_spi",
]

log = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]

SPI_SPEED_HZ = 2_400_000
"""SPI clock for `encode_ws2812_spi`: one SPI bit is 416.7 ns, three make a 1.25-µs WS2812 bit."""
SPI_BITS_PER_WS_BIT = 3
SPI_RESET_BYTES = 90
"""Zero bytes after the data: 90 · 8 / 2.4 MHz = 300 µs low, the WS2812B-V5 latch (> 280 µs)."""
SPI_MAX_BYTES = 4096
"""spidev's default transfer buffer (the `spidev.bufsiz` module parameter): one frame must fit
in one transfer, or the pause between transfers would latch half a frame."""

# One WS2812 byte -> three SPI bytes, for all 256 values, built once.
_SPI_CODE = np.zeros((256, 3), dtype=np.uint8)
for _v in range(256):
    _bits = 0
    for _i in range(7, -1, -1):
        _bits = (_bits << 3) | (0b110 if (_v >> _i) & 1 else 0b100)
    _SPI_CODE[_v] = [(_bits >> 16) & 0xFF, (_bits >> 8) & 0xFF, _bits & 0xFF]


def encode_ws2812_spi(frame: npt.ArrayLike) -> bytes:
    """Encode an RGB frame as the SPI byte stream that clocks it into a WS2812 chain.

    Each LED is sent G, R, B, MSB first; each data bit becomes 3 SPI bits (`100` = 0: high
    417 ns, low 833 ns; `110` = 1: high 833 ns, low 417 ns, at 2.4 MHz), so an LED takes 9 bytes;
    then `SPI_RESET_BYTES` zeros latch the frame.

    Args:
        frame: Shape (n_leds, 3), uint8 R, G, B.

    Returns:
        9 · n_leds + SPI_RESET_BYTES bytes, to be written at `SPI_SPEED_HZ`, SPI mode 0.
    """
    f = np.asarray(frame, dtype=np.uint8)
    grb = f[:, [1, 0, 2]].reshape(-1)
    return _SPI_CODE[grb].tobytes() + bytes(SPI_RESET_BYTES)


@dataclass(frozen=True, slots=True)
class RingHealth:
    """How the ring's writes are going.

    Attributes:
        ok: False after a failed write, True again after the next good one.
        write_failures: Failed writes since the ring was made.
        last_error: The last failure's message, "" if none.
    """

    ok: bool = True
    write_failures: int = 0
    last_error: str = ""


@runtime_checkable
class LedRing(Protocol):
    """A chain of RGB LEDs."""

    @property
    def n_leds(self) -> int:
        """Number of LEDs."""
        ...

    @property
    def health(self) -> RingHealth:
        """The writes' state (a write error is reported here, never raised)."""
        ...

    def show(self, frame: Frame) -> None:
        """Show `frame` (shape (n_leds, 3), uint8 R, G, B) now. Never raises on a device error."""
        ...

    def off(self) -> None:
        """Show all LEDs off. Never raises on a device error."""
        ...

    def close(self) -> None:
        """Turn the LEDs off and release the device."""
        ...


class _HasNow(Protocol):
    def now(self) -> float: ...


def _check_frame(frame: npt.ArrayLike, n_leds: int) -> Frame:
    f = np.asarray(frame)
    if f.shape != (n_leds, 3) or f.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 of shape ({n_leds}, 3), got {f.dtype} {f.shape}")
    return f


class _Reporting:
    """Shared health bookkeeping: log the first of a run of failures, count them all."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._health = RingHealth()

    @property
    def health(self) -> RingHealth:
        """The writes' state."""
        return self._health

    def _failed(self, err: BaseException) -> None:
        h = self._health
        if h.ok:
            log.error("%s write failed (retrying every frame): %s", self._name, err)
        self._health = RingHealth(False, h.write_failures + 1, str(err))

    def _succeeded(self) -> None:
        if not self._health.ok:
            log.info("%s writes again after %d failures", self._name, self._health.write_failures)
            self._health = RingHealth(True, self._health.write_failures, self._health.last_error)

    _n: int
    """Number of LEDs (set by each ring)."""

    def show(self, frame: Frame) -> None:
        """Show `frame` (each ring writes it its own way)."""
        raise NotImplementedError

    def off(self) -> None:
        """Show all LEDs off."""
        self.show(np.zeros((self._n, 3), dtype=np.uint8))


class SimulatedRing(_Reporting):
    """The twin: records every frame shown, with the clock's time.

    Args:
        n_leds: Number of LEDs, ≥ 1.
        clock: Anything with `now() -> float` (UTC epoch seconds).
        fail_writes: How many of the next writes fail (fault injection); a failed write is not
            recorded and is reported in `health`.

    Attributes:
        frames: Every frame shown, as (t_s, copy of the uint8 frame).
        closed: True after `close`.
    """

    def __init__(self, n_leds: int, clock: _HasNow, *, fail_writes: int = 0) -> None:
        super().__init__("simulated ring")
        if n_leds < 1:
            raise ValueError(f"n_leds must be ≥ 1, got {n_leds!r}")
        self._n = n_leds
        self._clock = clock
        self.fail_writes = fail_writes
        self.frames: list[tuple[float, Frame]] = []
        self.closed = False

    @property
    def n_leds(self) -> int:
        """Number of LEDs."""
        return self._n

    @property
    def last(self) -> Frame | None:
        """The frame showing now (None before the first)."""
        return self.frames[-1][1] if self.frames else None

    def show(self, frame: Frame) -> None:
        """Record `frame` at the clock's time (or report an injected failure)."""
        f = _check_frame(frame, self._n)
        if self.fail_writes > 0:
            self.fail_writes -= 1
            self._failed(OSError("simulated ring write failure"))
            return
        self.frames.append((self._clock.now(), f.copy()))
        self._succeeded()

    def close(self) -> None:
        """Record an all-off frame and mark the ring closed."""
        if not self.closed:
            self.off()
        self.closed = True


class SpiTransport(Protocol):
    """The part of `spidev.SpiDev` the ring uses."""

    max_speed_hz: int
    mode: int

    def writebytes2(self, data: bytes) -> None:
        """Write `data` in one transfer (spidev splits at its buffer size)."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class SpiRing(_Reporting):
    """WS2812 LEDs on an SPI MOSI pin (Pi 5, or any Pi): `encode_ws2812_spi` at 2.4 MHz.

    Wiring: MOSI (SPI0: GPIO 10, pin 19; SPI1: GPIO 20) through a 3.3 → 5 V level shifter (e.g.
    74AHCT125) to the ring's DIN. Enable the bus with `dtparam=spi=on` (SPI1: `dtoverlay=spi1-1cs`).
    On a Pi 5 the RP1's SPI clock is an even divisor of 200 MHz: 2.4 MHz comes out as ≈ 2.38 MHz,
    inside the WS2812's ±150 ns.

    Args:
        n_leds: Number of LEDs, 1–450 (one frame must fit in one 4096-byte transfer).
        spi: An open transport (tests pass a fake); None opens `/dev/spidev<bus>.<device>`.
        bus: SPI bus number.
        device: Chip-select number (the LEDs ignore it, spidev needs one).

    Raises:
        HardwareError: `spidev` is missing or the device cannot be opened.
    """

    def __init__(
        self, n_leds: int, spi: SpiTransport | None = None, *, bus: int = 0, device: int = 0
    ) -> None:
        super().__init__(f"SPI ring spidev{bus}.{device}")
        if n_leds < 1 or 9 * n_leds + SPI_RESET_BYTES > SPI_MAX_BYTES:
            raise ValueError(f"n_leds must be 1–450, got {n_leds!r}")
        self._n = n_leds
        self._spi = spi if spi is not None else _open_spidev(bus, device)
        self._spi.max_speed_hz = SPI_SPEED_HZ
        self._spi.mode = 0
        self._closed = False

    @property
    def n_leds(self) -> int:
        """Number of LEDs."""
        return self._n

    def show(self, frame: Frame) -> None:
        """Write `frame` to the chain; an OSError is reported in `health`, not raised."""
        data = encode_ws2812_spi(_check_frame(frame, self._n))
        try:
            self._spi.writebytes2(data)
        except OSError as e:
            self._failed(e)
        else:
            self._succeeded()

    def close(self) -> None:
        """Turn the LEDs off and close the SPI device."""
        if self._closed:
            return
        self.off()
        self._closed = True
        try:
            self._spi.close()
        except OSError as e:
            log.warning("SPI ring close failed: %s", e)


def _open_spidev(bus: int, device: int) -> SpiTransport:
    from appliance.errors import HardwareError

    try:
        import spidev  # type: ignore[import-not-found, unused-ignore]
    except ImportError as e:
        raise HardwareError("spidev is not installed (pip install '.[pi]')") from e
    spi = spidev.SpiDev()
    try:
        spi.open(bus, device)
    except OSError as e:
        raise HardwareError(f"cannot open /dev/spidev{bus}.{device}: {e}") from e
    transport: SpiTransport = spi
    return transport


class Ws281xRing(_Reporting):
    """WS2812/SK6812 LEDs on a Pi 1–4 through rpi-ws281x (PWM or PCM with DMA).

    Needs root (or /dev/mem access). On PWM (GPIO 18 or 12) the analogue audio jack cannot be
    used at the same time; GPIO 21 (PCM) or GPIO 10 (SPI) avoid that.

    Args:
        n_leds: Number of LEDs, ≥ 1.
        gpio_pin: Data pin, BCM numbering: 18 or 12 (PWM0), 13 or 19 (PWM1), 21 (PCM), 10 (SPI).
        module: The `rpi_ws281x` module (tests pass a fake); None imports it.
        dma: DMA channel (10 is safe on current kernels).

    Raises:
        HardwareError: rpi-ws281x is missing or the strip cannot be initialised.
    """

    def __init__(
        self, n_leds: int, gpio_pin: int = 18, *, module: Any = None, dma: int = 10
    ) -> None:
        from appliance.errors import HardwareError

        super().__init__(f"ws281x ring GPIO {gpio_pin}")
        if n_leds < 1:
            raise ValueError(f"n_leds must be ≥ 1, got {n_leds!r}")
        self._n = n_leds
        if module is None:
            try:
                import rpi_ws281x as module  # type: ignore[import-not-found, no-redef, unused-ignore]
            except ImportError as e:
                raise HardwareError("rpi-ws281x is not installed (pip install '.[pi]')") from e
        channel = 1 if gpio_pin in (13, 19) else 0
        # The library's default strip type is GRB, the WS2812's order.
        self._strip = module.PixelStrip(n_leds, gpio_pin, 800_000, dma, False, 255, channel)
        self._color = module.Color
        try:
            self._strip.begin()
        except (RuntimeError, OSError) as e:
            raise HardwareError(f"rpi-ws281x init failed on GPIO {gpio_pin}: {e}") from e
        self._closed = False

    @property
    def n_leds(self) -> int:
        """Number of LEDs."""
        return self._n

    def show(self, frame: Frame) -> None:
        """Send `frame`; a RuntimeError/OSError from the library is reported, not raised."""
        f = _check_frame(frame, self._n)
        try:
            for i, (r, g, b) in enumerate(f.tolist()):
                self._strip.setPixelColor(i, self._color(r, g, b))
            self._strip.show()
        except (RuntimeError, OSError) as e:
            self._failed(e)
        else:
            self._succeeded()

    def close(self) -> None:
        """Turn the LEDs off and free the DMA buffers."""
        if self._closed:
            return
        self.off()
        self._closed = True
        fini = getattr(self._strip, "_cleanup", None)
        if callable(fini):
            try:
                fini()
            except (RuntimeError, OSError) as e:
                log.warning("ws281x cleanup failed: %s", e)
