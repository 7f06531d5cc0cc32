"""The device's one button: short press and long press, as typed events.

Wiring: a normally-open push button between GPIO 17 (physical pin 11) and ground (pin 9 or 14),
using the Pi's internal pull-up; no resistor needed. GPIO 17 is free on the radar and audio HATs
this product targets and is not one of the LED ring's pins (18/12/13/19/21 or SPI 10).

What a press means is the daemon's choice (`action_for`): while the alarm rings, a short press
snoozes and a long press dismisses; otherwise a short press toggles the reading light and a long
press toggles standby. A long press is reported as soon as the hold time is reached (the user
feels it take effect without letting go); its release reports nothing more.

`PressClassifier` is the pure core (press, hold and release times in, events out). `GpioButton`
feeds it from gpiozero's `Button` callbacks (`when_pressed`, `when_held`, `when_released`), which
run in gpiozero's threads: give it a thread-safe `on_event`, e.g. `asyncio_sink(loop, queue)`,
which hands each event to the event loop with `loop.call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from appliance.errors import HardwareError

__all__ = [
    "DEFAULT_LONG_PRESS_S",
    "DEFAULT_PIN",
    "ButtonAction",
    "ButtonEvent",
    "GpioButton",
    "PressClassifier",
    "PressKind",
    "action_for",
    "asyncio_sink",
    "classify_press",
]

log = logging.getLogger(__name__)

DEFAULT_PIN = 17
"""BCM pin of the button (physical pin 11)."""
DEFAULT_LONG_PRESS_S = 2.0
"""A press held this long is a long press, seconds."""

PressKind = Literal["short", "long"]
ButtonAction = Literal["snooze", "dismiss", "light_toggle", "standby"]


@dataclass(frozen=True, slots=True)
class ButtonEvent:
    """One press.

    Attributes:
        kind: "short" (released before the hold time) or "long" (held to the hold time).
        t_s: When it was recognised (release of a short press, hold time of a long one), UTC
            epoch seconds from the injected clock.
        duration_s: How long the button had been down then, seconds.
    """

    kind: PressKind
    t_s: float
    duration_s: float


def classify_press(duration_s: float, long_press_s: float = DEFAULT_LONG_PRESS_S) -> PressKind:
    """A press held `duration_s` seconds is "long" from `long_press_s` on, else "short"."""
    return "long" if duration_s >= long_press_s else "short"


def action_for(kind: PressKind, *, ringing: bool) -> ButtonAction:
    """What a press does: snooze/dismiss while the alarm rings, light toggle/standby otherwise."""
    if ringing:
        return "snooze" if kind == "short" else "dismiss"
    return "light_toggle" if kind == "short" else "standby"


class PressClassifier:
    """Press, hold and release times in, `ButtonEvent`s out (pure).

    Args:
        long_press_s: Hold time of a long press, seconds, > 0.
    """

    def __init__(self, long_press_s: float = DEFAULT_LONG_PRESS_S) -> None:
        if not long_press_s > 0:
            raise ValueError(f"long_press_s must be > 0, got {long_press_s!r}")
        self.long_press_s = float(long_press_s)
        self._down_s: float | None = None
        self._long_sent = False

    def pressed(self, t_s: float) -> None:
        """The button went down at `t_s`."""
        self._down_s = t_s
        self._long_sent = False

    def held(self, t_s: float, *, confirmed: bool = False) -> ButtonEvent | None:
        """The button is still down at `t_s`: a long press once the hold time is reached.

        Args:
            t_s: Now, UTC epoch seconds.
            confirmed: The hold time is known to have passed (gpiozero's `when_held`, timed on
                the monotonic clock), whatever `t_s` says.
        """
        if self._down_s is None or self._long_sent:
            return None
        duration = t_s - self._down_s
        if not confirmed and classify_press(duration, self.long_press_s) != "long":
            return None
        self._long_sent = True
        return ButtonEvent("long", t_s, duration)

    def released(self, t_s: float) -> ButtonEvent | None:
        """The button went up at `t_s`: a short press, or a long one not yet reported."""
        if self._down_s is None:
            return None  # a release without a press (started held): nothing to report
        ev = self.held(t_s)
        if ev is None and not self._long_sent:
            ev = ButtonEvent("short", t_s, t_s - self._down_s)
        self._down_s = None
        self._long_sent = False
        return ev


class _HasNow(Protocol):
    def now(self) -> float: ...


def asyncio_sink(
    loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[ButtonEvent]
) -> Callable[[ButtonEvent], None]:
    """An `on_event` that puts each event on `queue` from any thread, via the event loop."""

    def put(ev: ButtonEvent) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ev)

    return put


class GpioButton:
    """The button on a GPIO pin, through gpiozero (imported when the button is made).

    Args:
        on_event: Called with each `ButtonEvent`, from gpiozero's threads; its exceptions are
            logged and swallowed.
        clock: Time of the events (anything with `now() -> float`, UTC epoch seconds).
        pin: BCM pin number (to ground, internal pull-up).
        long_press_s: Hold time of a long press, seconds.
        bounce_s: Debounce time, seconds (None: no debounce).
        pin_factory: gpiozero pin factory (tests pass a `MockFactory`); None = gpiozero's default.

    Raises:
        HardwareError: gpiozero is missing or the pin cannot be claimed.
    """

    def __init__(
        self,
        on_event: Callable[[ButtonEvent], None],
        clock: _HasNow,
        *,
        pin: int = DEFAULT_PIN,
        long_press_s: float = DEFAULT_LONG_PRESS_S,
        bounce_s: float | None = 0.03,
        pin_factory: Any = None,
    ) -> None:
        self._on_event = on_event
        self._clock = clock
        self._classifier = PressClassifier(long_press_s)
        try:
            from gpiozero import Button
        except ImportError as e:
            raise HardwareError("gpiozero is not installed (pip install '.[pi]')") from e
        try:
            self._button = Button(
                pin,
                pull_up=True,
                bounce_time=bounce_s,
                hold_time=long_press_s,
                pin_factory=pin_factory,
            )
        except Exception as e:  # gpiozero's errors have no common base with OSError
            raise HardwareError(f"button on GPIO {pin}: {e}") from e
        self.pin = pin
        self._button.when_pressed = self._pressed
        self._button.when_held = self._held
        self._button.when_released = self._released
        log.info("button on GPIO %d (long press %.1f s)", pin, long_press_s)

    def _pressed(self) -> None:
        self._classifier.pressed(self._clock.now())

    def _held(self) -> None:
        self._emit(self._classifier.held(self._clock.now(), confirmed=True))

    def _released(self) -> None:
        self._emit(self._classifier.released(self._clock.now()))

    def _emit(self, ev: ButtonEvent | None) -> None:
        if ev is None:
            return
        log.debug("button %s press %.2f s", ev.kind, ev.duration_s)
        try:
            self._on_event(ev)
        except Exception:
            log.exception("button event handler failed")

    def close(self) -> None:
        """Release the pin."""
        self._button.close()
