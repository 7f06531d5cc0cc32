"""The smart alarm's wake policy: safe (never late), honest about a blind stager, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.alarm import SmartAlarm
from appliance.frames import EPOCH_S, EpochFeatures, Stage, StagedEpoch
from appliance.wake_policy import (
    N_SYMBOLS,
    FirstWakeablePolicy,
    LatestSafePolicy,
    SleeperModel,
    observation,
    pair_index,
)

SET_S = 1_700_000_000.0 - (1_700_000_000.0 % 60.0)
WINDOW_S = 1800.0
LIGHT = (0.05, 0.9, 0.03, 0.02)  # the stager calls light, leaning neither deep nor REM


def staged(end_s: float, stage: int, probs: tuple[float, float, float, float]) -> StagedEpoch:
    f = EpochFeatures(end_s - EPOCH_S, int(end_s // EPOCH_S) - 1, 1.0, (), None, None, None, 0, 1)
    return StagedEpoch(end_s - EPOCH_S, int(end_s // EPOCH_S) - 1, stage, probs, max(probs), f)


def factorised(transitions: np.ndarray, emissions: np.ndarray) -> SleeperModel:
    """A model whose stager errors are independent: P(s', o' | s, o) = T[s, s'] E[s', o']."""
    m = np.einsum("ab,bd->abd", transitions, emissions)  # (s, s', o')
    joint = np.repeat(m[:, None, :, :], N_SYMBOLS, axis=1)  # the same for every last symbol
    return SleeperModel(joint.reshape(4 * N_SYMBOLS, 4 * N_SYMBOLS))


def called(p: dict[int, float]) -> np.ndarray:
    """An emission row: symbol → probability."""
    row = np.full(N_SYMBOLS, 1e-4)
    for k, v in p.items():
        row[k] = v
    return row / row.sum()


L_LOW = observation(Stage.LIGHT, np.array(LIGHT))
W_LOW = observation(Stage.WAKE, np.array([0.9, 0.05, 0.03, 0.02]))
R_HIGH = observation(Stage.REM, np.array([0.0, 0.1, 0.0, 0.9]))
D_HIGH = observation(Stage.DEEP, np.array([0.0, 0.1, 0.9, 0.0]))


def blind_stager_model(to_rem: float = 0.05) -> SleeperModel:
    """Light sleep drifts into REM (`to_rem` an epoch, REM bouts ~15 min) and the stager is half
    blind to it: it calls REM epochs light 40 % of the time (a run of light calls still means
    light sleep now, but not in ten minutes)."""
    t = np.array(
        [
            [0.90, 0.10, 0.00, 0.00],
            [0.01, 0.99 - to_rem, 0.00, to_rem],
            [0.00, 0.20, 0.80, 0.00],
            [0.00, 0.033, 0.00, 0.967],
        ]
    )
    assert L_LOW is not None and W_LOW is not None and R_HIGH is not None and D_HIGH is not None
    e = np.stack(
        [
            called({W_LOW: 0.9, L_LOW: 0.1}),
            called({L_LOW: 0.95, W_LOW: 0.05}),
            called({D_HIGH: 0.8, L_LOW: 0.2}),
            called({L_LOW: 0.4, R_HIGH: 0.6}),
        ]
    )
    return factorised(t, e)


def reliable_light_model() -> SleeperModel:
    """Light sleep that holds (one exit in ~80 min) and a stager that sees deep and REM."""
    t = np.array(
        [
            [0.90, 0.10, 0.00, 0.00],
            [0.002, 0.996, 0.001, 0.001],
            [0.00, 0.20, 0.80, 0.00],
            [0.00, 0.10, 0.00, 0.90],
        ]
    )
    assert L_LOW is not None and W_LOW is not None and R_HIGH is not None and D_HIGH is not None
    e = np.stack(
        [
            called({W_LOW: 0.95, L_LOW: 0.05}),
            called({L_LOW: 0.97, W_LOW: 0.03}),
            called({D_HIGH: 0.97, L_LOW: 0.03}),
            called({R_HIGH: 0.97, L_LOW: 0.03}),
        ]
    )
    return factorised(t, e)


def run_alarm(
    policy: LatestSafePolicy | FirstWakeablePolicy,
    stream: list[tuple[int, tuple[float, float, float, float]]],
    set_s: float = SET_S,
    window_s: float = WINDOW_S,
) -> SmartAlarm:
    """Feed one epoch per 30 s ending at set_s − 30 × (len − 1 − k), ticking each second."""
    a = SmartAlarm(set_s, window_s, policy=policy)
    t0 = set_s - len(stream) * EPOCH_S
    ends = {round(t0 + (k + 1) * EPOCH_S): e for k, e in enumerate(stream)}
    t = round(t0)
    while a.rang_at_s is None and t <= set_s + 2:
        a.update_time(float(t))
        if t in ends:
            stage, p = ends[t]
            a.update_epoch(staged(float(t), stage, p), float(t))
        t += 1
    return a


def light_night(hours: float = 2.0) -> list[tuple[int, tuple[float, float, float, float]]]:
    return [(int(Stage.LIGHT), LIGHT)] * int(hours * 3600 / EPOCH_S)


# --------------------------------------------------------------------------------------------
# Safety


_stage = st.sampled_from([int(s) for s in Stage] + [-1, -2])
_probs = st.tuples(*(st.floats(0.0, 1.0, allow_nan=False) for _ in range(4)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=st.lists(st.tuples(_stage, _probs), min_size=1, max_size=240),
    window_min=st.floats(0.0, 45.0),
    bad_wake=st.one_of(st.none(), st.floats(0.5, 5000.0)),
    blind=st.booleans(),
    offset_s=st.floats(0.0, 29.9),
)
def test_never_rings_after_the_deadline_nor_before_the_window(
    stream: list[tuple[int, tuple[float, float, float, float]]],
    window_min: float,
    bad_wake: float | None,
    blind: bool,
    offset_s: float,
) -> None:
    model = blind_stager_model() if blind else reliable_light_model()
    pol = LatestSafePolicy(bad_wake, model=model)
    set_s = SET_S + offset_s
    fixed = [(s, p if sum(p) > 0 else LIGHT) for s, p in stream]
    a = run_alarm(pol, fixed, set_s=set_s, window_s=window_min * 60.0)
    assert a.rang_at_s is not None
    assert a.window_start_s <= a.rang_at_s <= set_s + 1.0  # one 1-s tick of resolution


@settings(max_examples=60, deadline=None)
@given(
    now_s=st.floats(SET_S - WINDOW_S, SET_S + 600.0),
    belief=st.tuples(*(st.floats(0.0, 1.0, allow_nan=False) for _ in range(4))),
)
def test_ring_now_is_true_at_and_after_the_set_time_and_otherwise_finite(
    now_s: float, belief: tuple[float, float, float, float]
) -> None:
    pol = LatestSafePolicy(model=blind_stager_model())
    b = np.array(belief) if sum(belief) > 0 else np.array([0.0, 1.0, 0.0, 0.0])
    ring = pol.ring_now(b, now_s, SET_S - WINDOW_S, SET_S)
    if now_s >= SET_S:
        assert ring
    stop, wait = pol.values(now_s, SET_S - WINDOW_S, SET_S)
    assert np.all(np.isfinite(stop)) and np.all(np.isfinite(wait))


# --------------------------------------------------------------------------------------------
# The trade-off


def test_a_blind_stager_with_material_risk_rings_at_a_light_moment_not_at_the_deadline() -> None:
    # The stager calls light all morning: light sleep now, but with a 5 %-an-epoch drift into
    # REM that it may miss, waiting for the deadline risks a REM wake: it rings at a light
    # moment in the window (smart), well before the set time.
    a = run_alarm(LatestSafePolicy(model=blind_stager_model()), light_night())
    assert a.reason == "smart" and a.rang_at_s is not None
    assert a.window_start_s <= a.rang_at_s <= SET_S - 10 * 60


def test_a_small_risk_rings_at_a_light_moment_in_the_last_minutes_not_at_the_deadline() -> None:
    # A 0.25 %-an-epoch drift into REM: worth waiting most of the window, not worth betting the
    # last minutes on (the deadline rings in whatever stage it finds).
    a = run_alarm(LatestSafePolicy(model=blind_stager_model(0.0025)), light_night())
    assert a.reason == "smart" and a.rang_at_s is not None
    assert SET_S - 6 * 60 <= a.rang_at_s < SET_S


def test_a_larger_risk_never_rings_later() -> None:
    rings = []
    for to_rem in (0.001, 0.0025, 0.0035, 0.0045, 0.01):
        a = run_alarm(LatestSafePolicy(model=blind_stager_model(to_rem)), light_night())
        assert a.rang_at_s is not None
        rings.append(a.rang_at_s)
    assert rings == sorted(rings, reverse=True) and rings[0] > rings[-1]


def test_reliably_light_keeps_the_sleep() -> None:
    a = run_alarm(LatestSafePolicy(model=reliable_light_model()), light_night())
    assert a.rang_at_s is not None
    assert a.rang_at_s - a.window_start_s >= 25 * 60  # keeps at least 25 of the 30 minutes
    assert a.rang_at_s <= SET_S


def test_the_same_night_keeps_more_sleep_when_light_is_reliable() -> None:
    blind = run_alarm(LatestSafePolicy(model=blind_stager_model()), light_night())
    reliable = run_alarm(LatestSafePolicy(model=reliable_light_model()), light_night())
    assert blind.rang_at_s is not None and reliable.rang_at_s is not None
    assert blind.rang_at_s < reliable.rang_at_s


def test_a_larger_penalty_never_rings_later() -> None:
    rings = []
    for bad_wake in (10.0, 60.0, 240.0, 2000.0):
        a = run_alarm(LatestSafePolicy(bad_wake, model=blind_stager_model()), light_night())
        assert a.rang_at_s is not None
        rings.append(a.rang_at_s)
    assert rings == sorted(rings, reverse=True)


def test_a_leaning_light_epoch_is_worth_less_than_a_clean_one() -> None:
    pol = LatestSafePolicy(model=reliable_light_model())
    ws = SET_S - WINDOW_S
    stop, _ = pol.pair_values(SET_S - 600, ws, SET_S)
    light = np.zeros(4 * N_SYMBOLS)
    light[pair_index(int(Stage.LIGHT), int(L_LOW or 0))] = 1.0
    rem = np.zeros(4 * N_SYMBOLS)
    rem[pair_index(int(Stage.REM), int(L_LOW or 0))] = 1.0
    assert rem @ stop < light @ stop
    stop4, wait4 = pol.values(SET_S - 600, ws, SET_S, np.array([0.0, 0.3, 0.0, 0.7]))
    assert stop4.shape == wait4.shape == (4,)
    assert stop4[int(Stage.REM)] < stop4[int(Stage.LIGHT)]


# --------------------------------------------------------------------------------------------
# Determinism, the filter, the model


def test_deterministic() -> None:
    rng = np.random.default_rng(3)
    stream = [
        (int(rng.integers(0, 4)), tuple(float(x) for x in rng.dirichlet(np.ones(4))))
        for _ in range(300)
    ]
    runs = [
        run_alarm(LatestSafePolicy(model=blind_stager_model()), stream).rang_at_s for _ in range(2)
    ]
    assert runs[0] == runs[1] is not None


def test_the_filter_believes_rem_after_the_stager_calls_it_and_light_after_light() -> None:
    pol = LatestSafePolicy(model=reliable_light_model())
    t = SET_S - 3600
    for _ in range(20):
        pol.observe(staged(t, int(Stage.LIGHT), LIGHT))
        t += EPOCH_S
    post = pol.posterior()
    assert post is not None and post[int(Stage.LIGHT)] > 0.9
    for _ in range(6):
        pol.observe(staged(t, int(Stage.REM), (0.0, 0.05, 0.0, 0.95)))
        t += EPOCH_S
    post = pol.posterior()
    assert post is not None and post[int(Stage.REM)] > 0.9
    # An absent epoch and a gap only move the belief along the chain; it stays a distribution.
    pol.observe(staged(t + 600, -2, (0.25, 0.25, 0.25, 0.25)))
    post = pol.posterior()
    assert post is not None and post.sum() == pytest.approx(1.0)


def test_observation_symbols() -> None:
    assert observation(-1, np.array(LIGHT)) is None
    assert observation(int(Stage.LIGHT), np.array([0.1, 0.6, 0.1, 0.2])) == 2 * 1 + 1
    assert observation(int(Stage.LIGHT), np.array([0.1, 0.8, 0.05, 0.05])) == 2
    assert observation(int(Stage.WAKE), np.array([np.nan] * 4)) == 0
    assert {observation(s, np.array(LIGHT)) for s in range(4)} == {0, 2, 4, 6}


def test_count_recovers_the_chain_of_a_synthetic_population() -> None:
    # Truth alternates light runs of 20 epochs and REM runs of 10; the stager is right but
    # one epoch late. The counted model must see light → REM about once per 20 light epochs.
    truth = np.array(([1] * 20 + [3] * 10) * 40)
    stage = np.concatenate([[1], truth[:-1]])
    probs = np.zeros((len(truth), 4))
    probs[np.arange(len(truth)), stage] = 1.0
    m = SleeperModel.count([(truth, stage, probs)], morning_epochs=len(truth), prior_epochs=1.0)
    j = m.joint.reshape(4, N_SYMBOLS, 4, N_SYMBOLS).sum(axis=3)  # (s, o, s')
    l_low = int(L_LOW or 0)
    assert j[1, l_low, 3] == pytest.approx(1 / 20, abs=0.02)
    assert np.allclose(m.joint.sum(axis=1), 1.0)
    st_ = m.stationary()
    assert st_.sum() == pytest.approx(1.0) and np.all(st_ >= 0)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="bad_wake_min"):
        LatestSafePolicy(0.0)
    with pytest.raises(ValueError, match="joint"):
        SleeperModel(np.ones((4, 4)))
    with pytest.raises(ValueError, match="joint"):
        SleeperModel(-np.ones((32, 32)))
    with pytest.raises(ValueError, match="prior_epochs"):
        SleeperModel.from_counts(np.ones((32, 32)), prior_epochs=0.0)


def test_the_shipped_model_loads_and_is_a_chain() -> None:
    m = SleeperModel.default()
    assert m.joint.shape == (32, 32) and np.allclose(m.joint.sum(axis=1), 1.0)
    # The population chain (true stages) leaves light sleep for deep or REM now and then.
    j = m.joint.reshape(4, N_SYMBOLS, 4, N_SYMBOLS).sum(axis=3)
    pi = m.stationary().reshape(4, N_SYMBOLS)
    w = pi[1] / pi[1].sum()
    light_to_bad = float(w @ (j[1, :, 2] + j[1, :, 3]))
    assert 0.001 < light_to_bad < 0.2


def test_a_repeated_epoch_keeps_the_nights_belief() -> None:
    # A clock stepped back, or the rest of an epoch a pause flushed, repeats an index: the
    # belief the night built must survive it.
    pol = LatestSafePolicy(model=reliable_light_model())
    t = SET_S - 3600
    for _ in range(6):
        pol.observe(staged(t, int(Stage.REM), (0.0, 0.05, 0.0, 0.95)))
        t += EPOCH_S
    before = pol.posterior()
    pol.observe(staged(t - EPOCH_S, int(Stage.LIGHT), LIGHT))
    pol.observe(staged(t - 3 * EPOCH_S, int(Stage.LIGHT), LIGHT))
    assert before is not None and np.array_equal(pol.posterior(), before)


def test_the_shipped_counts_are_for_the_shipped_stager() -> None:
    # The policy plans against the live stager's own errors: a retrained live.onnx needs
    # `python -m benchmarks.alarm --held-out --print-model` and the new counts.
    import hashlib

    from appliance.staging import model_path
    from appliance.wake_policy import STAGER_PAIR_COUNTS_MODEL

    digest = hashlib.sha256(model_path("live").read_bytes()).hexdigest()
    assert digest[:16] == STAGER_PAIR_COUNTS_MODEL
