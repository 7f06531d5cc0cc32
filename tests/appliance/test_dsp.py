import numpy as np
import synthetic

from appliance.dsp import LARGE_MOVEMENT_MM_S, RadarDsp


def _run(fr, size=None):
    dsp = RadarDsp()
    if size is None:
        return dsp.update(fr)
    out = []
    for part in synthetic.split(fr, size):
        out += dsp.update(part)
    return out


def test_one_second_per_second_of_frames():
    secs = _run(synthetic.frames(45.0))
    assert len(secs) == 45
    assert np.allclose(np.diff([s.t_s for s in secs]), 1.0)


def test_breath_rate_heart_rate_and_distance_of_a_still_sleeper():
    secs = _run(synthetic.frames(120.0, people=((0.72, 14.0, 6.0, 63.0),)))
    late = [s for s in secs if s.t_s - secs[0].t_s > 40]
    near = [min(s.targets, key=lambda t: abs(t.distance_m - 0.72)) for s in late]
    assert all(abs(t.distance_m - 0.72) < 0.03 for t in near)
    # The synthetic breather's rate wanders ±4 % around 14/min (a metronome would be a fan).
    assert np.median([abs(t.breath_rate_bpm - 14.0) for t in near]) < 0.8
    assert np.median([abs(t.heart_rate_bpm - 63.0) for t in near]) < 3.0
    # The breath's 2nd harmonic (its asymmetric shape) carries ~14 % of the band's power.
    assert all(t.resp_quality > 0.75 for t in near)


def test_two_people_resolved_nearest_first():
    secs = _run(synthetic.frames(60.0, people=((0.7, 15.0, 6.0, 60.0), (1.5, 11.0, 8.0, 72.0))))
    last = secs[-1]
    assert len(last.targets) >= 2
    assert abs(last.targets[0].distance_m - 0.7) < 0.05
    assert any(
        abs(t.distance_m - 1.5) < 0.05 and abs(t.breath_rate_bpm - 11.0) < 1.0 for t in last.targets
    )


def test_empty_room_has_no_target():
    secs = _run(synthetic.frames(60.0, people=()))
    assert sum(len(s.targets) for s in secs[30:]) <= 2


def test_movement_stands_out():
    secs = _run(synthetic.frames(90.0, moving=((60.0, 66.0),)))
    t0 = secs[0].t_s
    still = [s.targets[0].movement for s in secs if 40 < s.t_s - t0 < 58 and s.targets]
    moving = [
        max(t.movement for t in s.targets) for s in secs if 61 < s.t_s - t0 < 66 and s.targets
    ]
    assert np.median(moving) > 3 * np.median(still)


def test_chunking_does_not_change_the_output():
    fr = synthetic.frames(40.0, people=((0.7, 15.0, 6.0, 62.0), (1.4, 12.0, 7.0, 70.0)))
    whole = _run(fr)
    for size in (1, 7, 33, 400):
        parts = _run(fr, size)
        assert len(parts) == len(whole)
        for a, b in zip(whole, parts, strict=True):
            assert a.t_s == b.t_s
            assert len(a.targets) == len(b.targets)
            for x, y in zip(a.targets, b.targets, strict=True):
                assert np.isclose(x.distance_m, y.distance_m, atol=1e-9)
                assert np.isclose(x.movement, y.movement, rtol=1e-6, atol=1e-9)
                assert (x.breath_rate_bpm is None) == (y.breath_rate_bpm is None)
                assert x.large_movement == y.large_movement
                assert np.isclose(x.steady_movement, y.steady_movement, rtol=1e-6, atol=1e-9)
                assert np.isclose(x.breath_amp_mm, y.breath_amp_mm, rtol=1e-6, atol=1e-9)
                assert np.isclose(x.heart_quality, y.heart_quality, rtol=1e-6, atol=1e-9)
            assert len(a.breaths) == len(b.breaths)
            for p, q in zip(a.breaths, b.breaths, strict=True):
                assert np.isclose(p.onset_s, q.onset_s) and np.isclose(p.interval_s, q.interval_s)
            assert np.allclose(a.beat_intervals_s, b.beat_intervals_s)
    assert sum(len(s.breaths) for s in whole) >= 2  # the chunked runs carry breaths too


def test_breaths_and_beats_of_a_still_sleeper():
    secs = _run(synthetic.frames(150.0, people=((0.7, 12.0, 6.0, 66.0),)))
    breaths = [b for s in secs for b in s.breaths]
    assert 20 <= len(breaths) <= 30  # ~135 s of breaths at 12/min from the first 15 s of window
    onsets = [b.onset_s for b in breaths]
    assert onsets == sorted(onsets) and len(set(onsets)) == len(onsets)  # each breath once
    assert abs(np.median([b.interval_s for b in breaths]) - 5.0) < 0.5
    assert all(b.inspiration_s > 0 and b.expiration_s > 0 for b in breaths)
    assert 3.0 < np.median([b.amplitude_mm for b in breaths]) < 9.0
    ibi = [x for s in secs for x in s.beat_intervals_s]
    assert ibi and abs(np.median(ibi) - 60.0 / 66.0) < 0.05


def test_large_movement_is_flagged_only_when_large():
    secs = _run(synthetic.frames(90.0, moving=((60.0, 66.0),)))
    t0 = secs[0].t_s
    targets = [(s.t_s - t0, t) for s in secs for t in s.targets]
    assert all(t.large_movement == (t.movement >= LARGE_MOVEMENT_MM_S) for _, t in targets)
    assert not any(t.large_movement for ts, t in targets if ts < 59.0 or ts > 68.0)
    assert all(t.movement > 2 * t.steady_movement for ts, t in targets if 61.0 <= ts <= 65.0)
