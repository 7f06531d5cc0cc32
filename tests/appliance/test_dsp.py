import numpy as np
import synthetic

from appliance.dsp import RadarDsp


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
    assert np.median([abs(t.breath_rate_bpm - 14.0) for t in near]) < 0.5
    assert np.median([abs(t.heart_rate_bpm - 63.0) for t in near]) < 3.0
    assert all(t.resp_quality > 0.8 for t in near)


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
