import math
from dataclasses import replace

import numpy as np
import synthetic

from appliance.config import Config
from appliance.epochs import FEATURE_NAMES, EpochBuilder
from appliance.frames import PresenceState, TrackedSecond
from appliance.pipeline import Pipeline


def _features(fr):
    pipe = Pipeline(Config(), stager=None)
    _, feats = pipe.features(fr)
    return feats + pipe.epochs.flush()


def test_epochs_are_30_s_from_the_first_frame():
    fr = synthetic.frames(150.0)
    feats = _features(fr)
    assert [f.index for f in feats] == [0, 1, 2, 3, 4]
    assert np.allclose([f.t_s - fr.t_s[0] for f in feats], [0, 30, 60, 90, 120])
    assert all(len(f.values) == len(FEATURE_NAMES) for f in feats)


def test_features_describe_the_sleeper():
    feats = _features(synthetic.frames(180.0, people=((0.75, 13.0, 6.0, 61.0),)))
    last = feats[-1]
    v = dict(zip(FEATURE_NAMES, last.values, strict=True))
    assert last.present_fraction == 1.0
    assert abs(v["br_mean"] - 13.0) < 0.5
    assert abs(v["hr_mean"] - 61.0) < 3.0
    assert last.distance_m is not None and abs(last.distance_m - 0.75) < 0.05


def test_empty_epochs_have_no_breath_rate():
    feats = _features(synthetic.frames(90.0, people=()))
    assert all(f.present_fraction == 0.0 for f in feats)
    assert all(f.breath_rate_bpm is None for f in feats)
    v = dict(zip(FEATURE_NAMES, feats[-1].values, strict=True))
    assert math.isnan(v["br_mean"])


def test_features_are_causal():
    fr = synthetic.frames(240.0, moving=((200.0, 210.0),))
    short = _features(synthetic.split(fr, 150 * 20)[0])
    full = _features(fr)
    for a, b in zip(short[:4], full[:4], strict=True):
        assert np.allclose(a.values, b.values, equal_nan=True)


def test_a_missing_second_does_not_shift_epochs():
    b = EpochBuilder(20.0)
    p = PresenceState(0.0, False, 0.0, "empty")
    out = []
    for t in [*range(1, 40), *range(45, 95)]:
        out += b.update(TrackedSecond(1000.0 + t - 0.05, p, None, 0))
    assert [e.index for e in out] == [0, 1, 2]


def test_half_an_hour_of_empty_room_starts_a_new_night():
    from appliance.frames import Target

    b = EpochBuilder(20.0)
    here = PresenceState(0.0, True, 0.9, "still")
    gone = PresenceState(0.0, False, 0.0, "empty")
    user = Target(0.7, 25.0, 2.0, 14.0, 60.0, 0.5, 0.9)
    out = []
    t = 1000.0
    for present, n_epochs in ((True, 20), (False, 70), (True, 5)):
        for _ in range(30 * n_epochs):
            t += 1.0
            out += b.update(
                TrackedSecond(t, here if present else gone, user if present else None, 0)
            )
    hours = FEATURE_NAMES.index("hours_in_bed")
    assert out[19].values[hours] > 0.15  # 19 epochs into the first night
    assert out[-1].values[hours] < 0.05  # the second night starts its own clock


def test_a_clock_jump_does_not_flood_empty_epochs():
    b = EpochBuilder(20.0, wall_grid=True)
    p = PresenceState(0.0, False, 0.0, "empty")
    out = []
    t0 = 1_800_000_000.0
    for t in range(95):
        out += b.update(TrackedSecond(t0 + t, p, None, 0))
    n = len(out)
    for t in range(95, 200):  # NTP steps the clock a year ahead
        out += b.update(TrackedSecond(t0 + 365 * 86400.0 + t, p, None, 0))
    assert len(out) - n <= 5
    assert all(e.t_s % 30.0 == 0.0 for e in out)  # on the wall clock's grid


def _rr_night(rr_s, n_epochs=12):
    """Feed a still sleeper's seconds with the beat-to-beat intervals `rr_s` (the HRV hook)."""
    from appliance.frames import Target

    b = EpochBuilder(1.0)
    here = PresenceState(0.0, True, 0.9, "still")
    user = Target(0.7, 25.0, 2.0, 14.0, 60.0, 0.5, 0.9)
    t_beats = np.cumsum(rr_s)
    cut = np.searchsorted(t_beats, np.arange(30 * n_epochs + 1), side="right")
    out = []
    for k in range(30 * n_epochs):
        out += b.update(TrackedSecond(1000.0 + k + 1, here, user, 0), rr_s[cut[k] : cut[k + 1]])
    return [dict(zip(FEATURE_NAMES, e.values, strict=True)) for e in out]


def test_beat_intervals_give_hrv_features():
    rng = np.random.default_rng(1)
    rr = 1.0 + 0.05 * rng.standard_normal(400)  # white: RMSSD = sqrt(2) SDNN, DFA alpha1 ~ 0.5
    last = _rr_night(rr)[-1]
    assert abs(last["rr_sdnn_ms"] - 50.0) < 8.0
    assert abs(last["rr_rmssd_ms"] / last["rr_sdnn_ms"] - math.sqrt(2.0)) < 0.2
    assert 0.3 < last["rr_dfa_a1"] < 0.7
    # Slow (0.1 Hz) oscillation of the intervals is LF power: LF/HF well above 1.
    t = np.cumsum(np.ones(400))
    slow = 1.0 + 0.05 * np.sin(2 * np.pi * 0.1 * t) + 0.005 * rng.standard_normal(400)
    assert _rr_night(slow)[-1]["rr_lf_hf_log"] > 2.0


def test_the_radar_beats_reach_the_hrv_features_and_none_leave_them_missing():
    # Through the pipeline: the DSP's beat intervals of the user's bin.
    feats = _features(synthetic.frames(180.0))
    v = dict(zip(FEATURE_NAMES, feats[-1].values, strict=True))
    assert all(math.isfinite(v[k]) for k in ("rr_sdnn_ms", "rr_rmssd_ms"))
    assert math.isfinite(v["hr_br_ratio"]) and abs(v["hr_br_ratio"] - 62.0 / 15.0) < 0.5
    # Without any beat interval (the heartbeat not resolved), the HRV features are missing.
    b = EpochBuilder(20.0)
    out = []
    for sec in Pipeline(Config(), None).features(synthetic.frames(180.0))[0]:
        out += b.update(replace(sec, beat_intervals_s=()))
    w = dict(zip(FEATURE_NAMES, out[-1].values, strict=True))
    assert all(math.isnan(w[k]) for k in ("rr_sdnn_ms", "rr_rmssd_ms", "rr_dfa_a1"))


def test_night_context_looks_ahead_but_keeps_the_live_features():
    from appliance.epochs import MORNING_FEATURE_NAMES, night_context

    live = np.zeros((60, len(FEATURE_NAMES)))
    live[:, FEATURE_NAMES.index("present_frac")] = 1.0
    hr = FEATURE_NAMES.index("hr_mean")
    live[:, hr] = 60.0
    live[40:, hr] = 80.0
    m = night_context(live)
    assert m.shape == (60, len(MORNING_FEATURE_NAMES))
    assert np.array_equal(m[:, : len(FEATURE_NAMES)], live.astype(np.float32))
    nxt = MORNING_FEATURE_NAMES.index("hr_mean_next20")
    assert m[30, nxt] > 65.0  # epoch 30 sees the rise at epoch 40
    pct = MORNING_FEATURE_NAMES.index("hr_mean_night_pct")
    assert m[50, pct] > m[10, pct]
