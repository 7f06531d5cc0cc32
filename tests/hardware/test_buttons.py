"""The button: the pure press classifier, and gpiozero's Button through its MockFactory."""

from __future__ import annotations

import asyncio
import threading

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from hardware.buttons import (
    ButtonEvent,
    GpioButton,
    PressClassifier,
    action_for,
    asyncio_sink,
    classify_press,
)


class ManualClock:
    def __init__(self, t_s: float) -> None:
        self.t_s = t_s

    def now(self) -> float:
        return self.t_s


def test_classify_press() -> None:
    assert classify_press(0.1) == "short"
    assert classify_press(1.999) == "short"
    assert classify_press(2.0) == "long"
    assert classify_press(0.6, long_press_s=0.5) == "long"


def test_actions_depend_on_ringing() -> None:
    assert action_for("short", ringing=True) == "snooze"
    assert action_for("long", ringing=True) == "dismiss"
    assert action_for("short", ringing=False) == "light_toggle"
    assert action_for("long", ringing=False) == "standby"


def test_classifier_short_and_long_presses() -> None:
    c = PressClassifier(2.0)
    c.pressed(100.0)
    assert c.held(101.0) is None  # not yet
    assert c.released(100.4) == ButtonEvent("short", 100.4, pytest.approx(0.4))
    c.pressed(200.0)
    ev = c.held(202.0)
    assert ev == ButtonEvent("long", 202.0, 2.0)
    assert c.held(203.0) is None  # reported once
    assert c.released(205.0) is None  # and not again on release
    c.pressed(300.0)
    assert c.released(302.5) == ButtonEvent("long", 302.5, 2.5)  # no hold tick seen: on release
    assert c.released(303.0) is None  # a release without a press
    with pytest.raises(ValueError):
        PressClassifier(0.0)


@pytest.fixture
def factory() -> MockFactory:
    f = MockFactory()
    yield f
    f.reset()
    Device.pin_factory = None


def test_gpio_button_short_press(factory: MockFactory) -> None:
    clock = ManualClock(1000.0)
    events: list[ButtonEvent] = []
    btn = GpioButton(events.append, clock, pin=17, bounce_s=None, pin_factory=factory)
    pin = factory.pin(17)
    pin.drive_low()  # pressed (pull-up: active low)
    clock.t_s = 1000.3
    pin.drive_high()
    assert events == [ButtonEvent("short", 1000.3, pytest.approx(0.3))]
    btn.close()


def test_gpio_button_long_press_fires_while_held(factory: MockFactory) -> None:
    clock = ManualClock(1000.0)
    got = threading.Event()
    events: list[ButtonEvent] = []

    def on_event(ev: ButtonEvent) -> None:
        events.append(ev)
        got.set()

    # gpiozero times the hold itself (a real 50 ms here); the wait only bounds a stuck test
    btn = GpioButton(on_event, clock, pin=17, long_press_s=0.05, bounce_s=None, pin_factory=factory)
    pin = factory.pin(17)
    pin.drive_low()
    clock.t_s = 1002.0
    assert got.wait(timeout=10.0)
    pin.drive_high()
    assert [(e.kind, e.t_s, e.duration_s) for e in events] == [("long", 1002.0, 2.0)]
    btn.close()


def test_events_reach_an_asyncio_queue_from_another_thread(factory: MockFactory) -> None:
    async def main() -> ButtonEvent:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ButtonEvent] = asyncio.Queue()
        clock = ManualClock(5.0)
        btn = GpioButton(
            asyncio_sink(loop, queue), clock, pin=27, bounce_s=None, pin_factory=factory
        )
        pin = factory.pin(27)

        def press() -> None:
            pin.drive_low()
            clock.t_s = 5.2
            pin.drive_high()

        t = threading.Thread(target=press)
        t.start()
        ev = await asyncio.wait_for(queue.get(), timeout=10.0)
        t.join()
        btn.close()
        return ev

    ev = asyncio.run(main())
    assert ev.kind == "short" and ev.t_s == 5.2


def test_handler_errors_are_swallowed(factory: MockFactory) -> None:
    def boom(ev: ButtonEvent) -> None:
        raise RuntimeError("handler bug")

    clock = ManualClock(0.0)
    btn = GpioButton(boom, clock, pin=22, bounce_s=None, pin_factory=factory)
    pin = factory.pin(22)
    pin.drive_low()
    pin.drive_high()  # no exception escapes into gpiozero's thread
    btn.close()


def test_buttons_config() -> None:
    from appliance.config import parse_config
    from appliance.errors import ConfigError

    cfg = parse_config({"buttons": {"pin": 26, "long_press_s": 3.0}}).buttons
    assert (cfg.pin, cfg.long_press_s) == (26, 3.0)
    assert parse_config({}).buttons.pin == 17
    with pytest.raises(ConfigError, match=r"buttons\.long_press_s"):
        parse_config({"buttons": {"long_press_s": 0.1}})
    with pytest.raises(ConfigError, match=r"already used by buttons\.pin"):
        parse_config({"speaker": {"buzzer_pin": 17}})
