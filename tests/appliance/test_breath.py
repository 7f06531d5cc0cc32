import math

import numpy as np

from appliance.breath import breath_stats, find_breaths


def _breaths(intervals_s, ti_frac, amps_mm, fs=10.0):
    """A breath waveform with known breaths: inspiration falls (toward the radar), cosine shaped."""
    parts = []
    nxt = [*amps_mm[1:], amps_mm[-1]]
    for iv, amp, a_next in zip(intervals_s, amps_mm, nxt, strict=True):
        ni = int(round(iv * ti_frac * fs))
        ne = int(round(iv * fs)) - ni
        insp = amp / 2 * np.cos(np.pi * np.arange(ni) / ni)
        rise = (1 - np.cos(np.pi * np.arange(ne) / ne)) / 2
        expi = -amp / 2 + (amp / 2 + a_next / 2) * rise
        parts += [insp, expi]
    return np.concatenate(parts)


def test_each_breath_is_found_with_its_timing_and_amplitude():
    rng = np.random.default_rng(3)
    iv = rng.uniform(3.5, 5.5, 12)
    amp = rng.uniform(3.0, 8.0, 12)
    x = _breaths(iv, 0.4, amp)
    x = x + rng.normal(0, 0.05, x.size)
    found, done = find_breaths(x, 10.0, t0_s=100.0)
    # Every breath but the last (its closing maximum is never confirmed) is complete.
    assert len(found) == 11
    onsets = 100.0 + np.concatenate([[0.0], np.cumsum(iv)[:-1]])
    for k, b in enumerate(found):
        assert abs(b.onset_s - onsets[k]) < 0.35
        assert abs(b.interval_s - iv[k]) < 0.4
        assert abs(b.inspiration_s - 0.4 * iv[k]) < 0.4
        assert abs(b.amplitude_mm - amp[k]) < 0.3 * amp[k] + 0.2
    assert all(d > 0 for d in done) and done == sorted(done)
    st = breath_stats(found)
    assert abs(st.rate_bpm - 60.0 / np.median(iv[:11])) < 1.0
    assert abs(st.ti_ratio - 0.4) < 0.05
    assert 0.05 < st.interval_cv < 0.3


def test_noise_smaller_than_the_band_does_not_split_breaths():
    t = np.arange(0, 60, 0.1)
    x = 3.0 * np.sin(2 * np.pi * 0.25 * t) + 0.4 * np.sin(2 * np.pi * 2.3 * t)
    found, _ = find_breaths(x, 10.0)
    assert 13 <= len(found) <= 15
    assert abs(np.median([b.interval_s for b in found]) - 4.0) < 0.2
    assert all(abs(b.interval_s - 4.0) < 0.6 for b in found)


def test_nothing_in_noise_or_silence():
    assert find_breaths(np.zeros(300), 10.0) == ([], [])
    st = breath_stats([])
    assert st.n == 0 and math.isnan(st.rate_bpm) and st.amp_mm == 0.0
