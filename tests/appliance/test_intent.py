import numpy as np

from appliance.intent import find_intent


def test_change_points_find_trying_to_sleep_and_final_wake():
    rng = np.random.default_rng(1)
    reading = rng.uniform(0.0, 0.3, 80)
    asleep = rng.uniform(0.6, 1.0, 600)
    morning = rng.uniform(0.0, 0.3, 20)
    res = find_intent(np.concatenate([reading, asleep, morning]))
    assert res.intent_index is not None and abs(res.intent_index - 80) <= 2
    assert res.final_wake_index is not None and abs(res.final_wake_index - 680) <= 2


def test_never_trying_gives_none():
    res = find_intent(np.full(100, 0.1))
    assert res.intent_index is None and res.final_wake_index is None


def test_short_series():
    assert find_intent(np.array([0.9, 0.9])).intent_index == 0
    assert find_intent(np.array([])).intent_index is None


def test_lights_out_is_the_strongest_hint():
    from appliance.epochs import FEATURE_NAMES
    from appliance.frames import EpochFeatures
    from appliance.intent import IntentScorer

    vals = [0.0] * len(FEATURE_NAMES)
    ep = EpochFeatures(0.0, 0, 1.0, tuple(vals), 14.0, 60.0, 0.7, 0.0, 1.0)
    sc = IntentScorer()
    lamp, tv, dark = sc.update(ep, 150.0), sc.update(ep, 20.0), sc.update(ep, 0.02)
    assert lamp < 0.6 and tv < 0.6 and dark > 0.75
