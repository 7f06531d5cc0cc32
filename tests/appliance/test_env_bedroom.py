"""The bedroom insight, on hand-computed nights."""

import math

import pytest

from appliance.bedroom import Span, bedroom_insight

T = [0.0, 60.0, 120.0, 180.0, 240.0]
TEMP = [15.0, 17.0, 21.0, None, 19.0]
HUM = [35.0, 45.0, 65.0, 50.0, math.nan]
LUX = [0.5, 3.0, 0.1, 2.0, None]
ASLEEP = [0.0, 30.0, 60.0, 90.0, 180.0, 240.0, 270.0]


def test_ranges_and_minutes_outside_by_hand():
    ins = bedroom_insight(T, TEMP, HUM, LUX, ASLEEP, end_s=300.0)
    assert ins.temperature_c == Span(15.0, 21.0)
    assert ins.humidity_pct == Span(35.0, 65.0)
    assert ins.lux == Span(0.1, 3.0)
    # each reading stands for 60 s; the missing temperature counts neither way
    assert ins.minutes_too_cold == 1.0
    assert ins.minutes_too_warm == 1.0
    assert ins.minutes_climate_covered == 4.0
    assert ins.minutes_too_dry == 1.0
    assert ins.minutes_too_humid == 1.0
    # epoch mid-points 15, 45 -> 0.5 lx; 75, 105 -> 3 lx; 195 -> 2 lx; 255, 285 -> invalid
    assert ins.minutes_light_asleep == 1.5
    assert ins.minutes_asleep_covered == 2.5
    assert ins.lux_asleep == Span(0.5, 3.0)


def test_boundaries_are_inside_the_recommendation():
    ins = bedroom_insight([0.0, 60.0], [16.0, 20.0], [40.0, 60.0], [1.0, 1.0], [0.0, 60.0],
                          end_s=120.0)  # fmt: skip
    assert (ins.minutes_too_cold, ins.minutes_too_warm) == (0.0, 0.0)
    assert (ins.minutes_too_dry, ins.minutes_too_humid) == (0.0, 0.0)
    assert ins.minutes_light_asleep == 0.0


def test_a_gap_in_the_readings_is_not_counted():
    ins = bedroom_insight([0.0, 600.0], [25.0, 25.0], [50.0, 50.0], [5.0, 5.0], [300.0],
                          end_s=660.0, max_hold_s=120.0)  # fmt: skip
    assert ins.minutes_too_warm == 2.0 + 1.0  # 120 s held, then the last reading's 60 s
    assert ins.minutes_light_asleep == 0.0  # the reading at 0 s is stale at 315 s
    assert ins.minutes_asleep_covered == 0.0


def test_an_empty_night():
    ins = bedroom_insight([], [], [], [], [])
    assert ins.temperature_c is None and ins.lux_asleep is None
    assert ins.minutes_too_cold == 0.0 and ins.minutes_light_asleep == 0.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one value"):
        bedroom_insight([0.0], [], [], [], [])
    with pytest.raises(ValueError, match="ascending"):
        bedroom_insight([60.0, 0.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [])
