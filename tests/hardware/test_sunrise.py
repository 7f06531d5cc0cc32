"""The sunrise curve, its colours, the dither and the light controller on the simulated ring."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.clock import VirtualClock
from hardware.light.colour import (
    cct_to_rgb,
    cct_to_xy,
    lightness_to_luminance,
    relative_luminance,
)
from hardware.light.controller import LightController, LightSettings
from hardware.light.ring import SimulatedRing
from hardware.light.sunrise import (
    Dither,
    SunriseCurve,
    night_frame,
    reading_frame,
    sunrise_frame,
)

SET_S = 1_700_000_000.0
DUR_S = 1800.0
START_S = SET_S - DUR_S


def test_planckian_locus_matches_published_chromaticities() -> None:
    # CIE 1931 xy of a blackbody (CIE 15:2004 tables, rounded): 2000 K, 2856 K (illuminant A),
    # 4000 K, 6504 K.
    for t_k, x, y in [
        (2000, 0.5267, 0.4133),
        (2856, 0.4476, 0.4074),
        (4000, 0.3805, 0.3768),
        (6504, 0.3135, 0.3237),
    ]:
        got = cct_to_xy(t_k)
        assert got[0] == pytest.approx(x, abs=2e-3)
        assert got[1] == pytest.approx(y, abs=2e-3)


def test_lightness_to_luminance_is_the_cie_inverse() -> None:
    assert lightness_to_luminance(0.0) == 0.0
    assert lightness_to_luminance(1.0) == pytest.approx(1.0)
    assert lightness_to_luminance(0.5) == pytest.approx(0.1842, abs=1e-4)  # L* 50 -> Y 18.4 %
    ys = [lightness_to_luminance(p) for p in np.linspace(0, 1, 1001)]
    assert np.all(np.diff(ys) > 0)
    # continuous at the toe's knee (L* = 8)
    assert lightness_to_luminance(0.08 - 1e-9) == pytest.approx(lightness_to_luminance(0.08))


def _frames(times: np.ndarray, max_brightness: float = 0.8) -> np.ndarray:
    return np.stack([sunrise_frame(t, START_S, DUR_S, 12, max_brightness) for t in times])


def test_brightness_is_monotone_and_every_channel_never_dims() -> None:
    times = np.arange(START_S - 60, SET_S + 120, 1.0)
    frames = _frames(times)
    lum = relative_luminance(frames[:, 0, :])
    assert np.all(np.diff(lum) >= -1e-12)
    assert np.all(np.diff(frames[:, 0, :], axis=0) >= -1e-9)  # red, green and blue each rise


def test_sunrise_is_dark_before_start_and_full_at_the_set_time() -> None:
    before = sunrise_frame(START_S - 1, START_S, DUR_S, 12, 0.8)
    assert np.all(before == 0)
    at_set = sunrise_frame(SET_S, START_S, DUR_S, 12, 0.8)
    after = sunrise_frame(SET_S + 600, START_S, DUR_S, 12, 0.8)
    np.testing.assert_array_equal(at_set, after)
    assert at_set.max() == pytest.approx(0.8 * 255)
    just_before = sunrise_frame(SET_S - 1, START_S, DUR_S, 12, 0.8)
    assert just_before.max() < at_set.max()
    # half way (by lightness) is 18 % of the end luminance, not 50 %: perceptually even
    mid = sunrise_frame(START_S + DUR_S / 2, START_S, DUR_S, 12, 0.8)
    assert mid.max() == pytest.approx(0.8 * 255 * 0.1842, rel=1e-3)


def test_colour_runs_from_deep_red_to_warm_white() -> None:
    first = sunrise_frame(START_S + 1, START_S, DUR_S, 1, 1.0)[0]
    last = sunrise_frame(SET_S, START_S, DUR_S, 1, 1.0)[0]
    np.testing.assert_allclose(first / first.max(), cct_to_rgb(1800.0), atol=2e-3)
    np.testing.assert_allclose(last / last.max(), cct_to_rgb(4000.0), atol=1e-9)
    assert first[2] == 0.0 and first[1] / first[0] < 0.25  # 1800 K: red, a little green
    assert 0.6 < last[1] / last[0] < 0.7 and 0.3 < last[2] / last[0] < 0.45  # 4000 K
    # the temperature on the way, even in mireds
    curve = SunriseCurve()
    ks = [curve.colour_k(p) for p in np.linspace(0, 1, 31)]
    assert ks[0] == pytest.approx(1800.0) and ks[-1] == pytest.approx(4000.0)
    assert np.all(np.diff(ks) > 0)
    assert np.all(np.diff(1e6 / np.array(ks)) == pytest.approx(np.diff(1e6 / np.array(ks))[0]))


def test_custom_duration_ends_at_the_set_time() -> None:
    dur = 600.0
    start = SET_S - dur
    assert np.all(sunrise_frame(start - 0.5, start, dur, 4, 0.5) == 0)
    assert sunrise_frame(start + 1, start, dur, 4, 0.5).max() > 0
    assert sunrise_frame(SET_S, start, dur, 4, 0.5).max() == pytest.approx(127.5)
    assert sunrise_frame(SET_S - 5, start, dur, 4, 0.5).max() < 127.5


@pytest.mark.parametrize("level", [0.03, 0.1, 0.28, 0.5, 0.77, 1.4, 3.3])
def test_dither_average_tracks_sub_lsb_levels(level: float) -> None:
    n_leds, n_frames = 16, 250
    d = Dither(n_leds)
    want = np.full((n_leds, 3), level)
    out = np.stack([d.update(want) for _ in range(n_frames)]).astype(float)
    per_led = out.mean(axis=0)
    assert np.all(np.abs(per_led - level) <= 1.0 / n_frames + 1e-12)
    # spread over the ring, not all LEDs blinking together: each frame's ring mean is close too
    ring_mean = out.mean(axis=(1, 2))
    assert np.all(np.abs(ring_mean - level) <= 0.5)
    assert set(np.unique(out)) <= {np.floor(level), np.ceil(level)}


def test_dither_keeps_off_off_and_full_full() -> None:
    d = Dither(8)
    for _ in range(20):
        assert np.all(d.update(np.zeros((8, 3))) == 0)
    for _ in range(20):
        assert np.all(d.update(np.full((8, 3), 255.0)) == 255)


def test_dither_follows_the_rising_sunrise_at_its_dim_start() -> None:
    # the first 3 minutes at 25 frames/s: mean output per 10-s window within 0.05 LSB
    d = Dither(12)
    times = START_S + np.arange(0, 180, 0.04)
    want = _frames(times)
    got = np.stack([d.update(w) for w in want]).astype(float)
    assert want[0].max() == 0.0 and want[-1].max() < 16.0  # the dithered low end
    for w in range(18):
        sl = slice(w * 250, (w + 1) * 250)
        assert abs(got[sl].mean() - want[sl].mean()) < 0.05
    assert got[: 25 * 5].max() <= 1  # a sub-LSB level never shows as a jump


def test_steady_modes() -> None:
    r = reading_frame(4, 0.6)
    np.testing.assert_allclose(r[0] / r[0].max(), cct_to_rgb(3000.0))
    assert r.max() == pytest.approx(153.0)
    n = night_frame(4, 0.02)
    assert np.all(n[:, 1:] == 0) and n[0, 0] == pytest.approx(5.1)


def _controller(**kw: float) -> tuple[LightController, SimulatedRing, VirtualClock]:
    clock = VirtualClock(START_S - 100)
    ring = SimulatedRing(12, clock)
    return LightController(ring, LightSettings(**kw)), ring, clock  # type: ignore[arg-type]


def test_controller_plays_the_sunrise_to_the_set_time_on_the_ring() -> None:
    ctl, ring, clock = _controller(sunrise_s=600.0)  # 10 min: fewer fast frames to run
    start_s = SET_S - 600.0
    ctl.arm_sunrise(SET_S)
    levels = []
    t = start_s - 100
    while t <= SET_S + 60:
        clock.advance_to(t)
        levels.append((t, ctl.update(t)))
        t += ctl.update_interval_s
    before = [s for t, s in levels if t < start_s]
    assert all(s.mode == "off" and s.level == 0 for s in before)
    during = [s for t, s in levels if start_s <= t < SET_S]
    assert all(s.mode == "sunrise" for s in during)
    lv = [s.level for s in during]
    assert np.all(np.diff(lv) >= 0)
    at_set = [s for t, s in levels if t >= SET_S]
    assert at_set[0].level == pytest.approx(max(s.level for _, s in levels))
    # the ring got frames faster while dithering the dim start, once a second later
    fast = [t for t, _ in ring.frames if start_s <= t < start_s + 60]
    assert len(fast) > 100
    assert ring.last is not None and ring.last.max() == 204  # 0.8 · 255
    assert ctl.emitted_lux_estimate == pytest.approx(at_set[-1].level * 60.0)


def test_controller_dismiss_and_manual_modes() -> None:
    ctl, ring, _ = _controller()
    ctl.arm_sunrise(SET_S)
    assert ctl.update(SET_S + 10).mode == "sunrise"
    ctl.dismiss()
    assert ctl.update(SET_S + 11).mode == "off"
    assert ring.last is not None and ring.last.max() == 0
    assert ctl.toggle() == "reading"
    s = ctl.update(SET_S + 12)
    assert s.mode == "reading" and s.level > 0.2
    ctl.set_mode("night")
    assert ctl.update(SET_S + 13).mode == "night"
    assert ctl.toggle() == "off"
    assert ctl.update(SET_S + 14).level == 0.0
    with pytest.raises(ValueError, match="manual light mode"):
        ctl.set_mode("sunrise")


def test_controller_off_during_sunrise_cancels_it_and_the_hold_ends() -> None:
    ctl, _, _ = _controller(hold_s=60.0)
    ctl.arm_sunrise(SET_S)
    assert ctl.update(START_S + 600).mode == "sunrise"
    ctl.set_mode("off")
    assert ctl.update(START_S + 601).mode == "off"
    ctl.arm_sunrise(SET_S + 86400)  # tomorrow's
    assert ctl.update(SET_S + 86400 + 59).mode == "sunrise"
    assert ctl.update(SET_S + 86400 + 60).mode == "off"  # nobody dismissed: hold over


def test_controller_reports_a_failing_ring_and_keeps_going() -> None:
    ctl, ring, _ = _controller()
    ring.fail_writes = 2
    ctl.set_mode("reading")
    s = ctl.update(START_S)
    assert not s.health.ok and s.health.write_failures == 1
    ctl.update(START_S + 1)
    s = ctl.update(START_S + 2)  # the same frame is resent after a failure
    assert s.health.ok and s.health.write_failures == 2
    assert ring.last is not None and ring.last.max() > 0


def test_light_config() -> None:
    from appliance.config import parse_config
    from appliance.errors import ConfigError

    cfg = parse_config({}).light
    assert (cfg.type, cfg.sunrise_min, cfg.n_leds) == ("simulated", 30.0, 24)
    cfg = parse_config({"light": {"type": "spi", "spi_bus": 1, "sunrise_min": 90.0}}).light
    assert cfg.spi_bus == 1 and cfg.sunrise_min == 90.0
    with pytest.raises(ConfigError, match=r"light\.sunrise_min"):
        parse_config({"light": {"sunrise_min": 91.0}})
    with pytest.raises(ConfigError, match=r"light\.gpio_pin: GPIO 4 cannot drive"):
        parse_config({"light": {"type": "ws281x", "gpio_pin": 4}})
    with pytest.raises(ConfigError, match=r"light\.type"):
        parse_config({"light": {"type": "dmx"}})
