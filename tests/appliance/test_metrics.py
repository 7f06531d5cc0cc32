"""Sleep metrics, agreement and Bland–Altman against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from appliance.frames import ABSENT, UNSCORED
from appliance.metrics import (
    Agreement,
    SleepMetrics,
    agreement,
    bland_altman,
    sleep_metrics,
    stage_minutes,
)

W, L, D, R, U, A = 0, 1, 2, 3, UNSCORED, ABSENT

# index:  0  1  2  3  4  5  6  7  8  9 10 11 12
SMALL = [W, W, W, L, L, D, D, R, W, L, L, W, W]


def test_small_night_exact_values() -> None:
    m = sleep_metrics(SMALL)
    assert m.tib_min == 6.5  # 13 epochs
    assert m.tst_min == 3.5  # 7 sleep epochs (3, 4, 5, 6, 7, 9, 10)
    assert m.se_pct == pytest.approx(700 / 13)
    assert m.sleep_onset_index == 3
    assert m.intent_index == 0
    assert m.sol_min == 1.5  # epochs 0..2
    assert m.waso_min == 0.5  # epoch 8
    assert m.awakenings == 0  # a single wake epoch is < 1 min
    assert m.out_of_bed == 0
    assert (m.light_min, m.deep_min, m.rem_min) == (2.0, 1.0, 0.5)
    assert m.light_pct == pytest.approx(400 / 7)
    assert m.deep_pct == pytest.approx(200 / 7)
    assert m.rem_pct == pytest.approx(100 / 7)
    assert m.deep_latency_min == 1.0  # epoch 5 - onset 3
    assert m.rem_latency_min == 2.0  # epoch 7 - onset 3
    assert m.final_wake_index == 11


def test_intent_index_shifts_sleep_latency_only() -> None:
    base = sleep_metrics(SMALL)
    m = sleep_metrics(SMALL, intent_index=1)
    assert m.sol_min == 1.0
    assert m.intent_index == 1
    assert (m.tib_min, m.tst_min, m.waso_min) == (base.tib_min, base.tst_min, base.waso_min)


def test_intent_after_onset_gives_zero_latency() -> None:
    assert sleep_metrics(SMALL, intent_index=5).sol_min == 0.0


def test_epoch_length_scales_minutes() -> None:
    m = sleep_metrics(SMALL, epoch_s=60.0)
    assert (m.tib_min, m.tst_min, m.sol_min) == (13.0, 7.0, 3.0)


def test_awakening_needs_two_wake_epochs() -> None:
    m = sleep_metrics([W, L, W, W, L, W, L])
    assert m.awakenings == 1  # epochs 2-3; epoch 5 alone is too short
    assert m.waso_min == 1.5


def test_unscored_neither_breaks_nor_extends_an_awakening() -> None:
    m = sleep_metrics([L, W, U, W, L, W, U, L])
    assert m.awakenings == 1  # W U W holds two wake epochs; W U holds one
    assert m.waso_min == 1.5  # unscored epochs are not wake
    assert m.tst_min == 1.5
    assert m.tib_min == 4.0


def test_night_with_no_sleep() -> None:
    m = sleep_metrics([W, W, A, W])
    assert m.tib_min == 2.0
    assert m.tst_min == 0.0
    assert m.se_pct == 0.0
    assert m.out_of_bed == 1
    for name in (
        "sol_min",
        "waso_min",
        "awakenings",
        "light_pct",
        "deep_pct",
        "rem_pct",
        "deep_latency_min",
        "rem_latency_min",
        "final_wake_index",
        "sleep_onset_index",
    ):
        assert getattr(m, name) is None, name


def test_nobody_in_bed_and_empty_hypnogram() -> None:
    for hyp in ([A, A, A], []):
        m = sleep_metrics(hyp)
        assert m.tib_min == 0.0
        assert m.se_pct is None
        assert m.out_of_bed == 0
        assert m.intent_index is None


def test_absent_inside_the_night() -> None:
    # index: 0  1  2  3  4  5  6  7  8  9 10
    hyp = [A, W, L, A, A, L, W, U, L, W, A]
    m = sleep_metrics(hyp)
    assert m.tib_min == 4.5  # epochs 1..9
    assert m.tst_min == 1.5
    assert m.se_pct == pytest.approx(100 / 3)
    assert m.sol_min == 0.5  # first in bed 1, onset 2
    assert m.waso_min == 1.5  # absent 3, 4 and wake 6
    assert m.out_of_bed == 1  # the leading and trailing absences are outside time in bed
    assert m.awakenings == 1  # out of bed 3-4; W U at 6-7 holds one wake epoch
    assert m.final_wake_index == 9


def test_latencies_none_when_stage_never_reached_and_night_ends_asleep() -> None:
    m = sleep_metrics([W, L, L, D])
    assert m.rem_latency_min is None
    assert m.deep_latency_min == 1.0
    assert m.final_wake_index == 4
    assert m.rem_pct == 0.0


def test_to_dict_is_json_friendly() -> None:
    d = sleep_metrics(np.array(SMALL, dtype=np.int8)).to_dict()
    assert set(d) == set(SleepMetrics.__dataclass_fields__)
    assert json.loads(json.dumps(d)) == d
    assert type(d["final_wake_index"]) is int


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError):
        sleep_metrics([0, 7])
    with pytest.raises(ValueError):
        sleep_metrics([[0, 1]])
    with pytest.raises(ValueError):
        sleep_metrics(SMALL, intent_index=13)
    with pytest.raises(ValueError):
        sleep_metrics(SMALL, epoch_s=0.0)


def test_agreement_perfect() -> None:
    a = agreement(SMALL, SMALL)
    assert a.n_epochs == 13
    assert a.accuracy == 1.0
    assert a.kappa == 1.0
    assert a.classes == ("wake", "light", "deep", "rem")
    assert all(v == 1.0 for s in a.per_stage.values() for v in s.values())


def test_agreement_hand_computed() -> None:
    truth = [W, W, W, L, L, L, D, D, R, R]
    pred = [W, W, L, L, L, D, D, D, R, W]
    a = agreement(truth, pred)
    assert a.confusion == [[2, 1, 0, 0], [0, 2, 1, 0], [0, 0, 2, 0], [1, 0, 0, 1]]
    assert a.accuracy == pytest.approx(0.7)
    # p_o = 0.7; rows 3,3,2,2 and columns 3,3,3,1 give p_e = 26/100
    assert a.kappa == pytest.approx((0.7 - 0.26) / (1 - 0.26))
    assert a.kappa == pytest.approx(22 / 37)
    assert a.per_stage["wake"] == pytest.approx(
        {"sensitivity": 2 / 3, "precision": 2 / 3, "specificity": 6 / 7}
    )
    assert a.per_stage["rem"] == pytest.approx(
        {"sensitivity": 0.5, "precision": 1.0, "specificity": 1.0}
    )
    assert a.per_stage["deep"] == pytest.approx(
        {"sensitivity": 1.0, "precision": 2 / 3, "specificity": 7 / 8}
    )


def test_agreement_three_classes_merges_light_and_deep() -> None:
    truth = [W, W, W, L, L, L, D, D, R, R]
    pred = [W, W, L, L, L, D, D, D, R, W]
    a = agreement(truth, pred, classes=3)
    assert a.classes == ("wake", "nrem", "rem")
    assert a.confusion == [[2, 1, 0], [0, 5, 0], [1, 0, 1]]
    assert a.accuracy == pytest.approx(0.8)
    # rows 3,5,2 and columns 3,6,1 give p_e = 41/100
    assert a.kappa == pytest.approx(39 / 59)
    assert a.per_stage["nrem"]["sensitivity"] == 1.0
    assert a.per_stage["nrem"]["precision"] == pytest.approx(5 / 6)


def test_agreement_skips_unscored_truth_and_counts_device_absence_as_wake() -> None:
    a = agreement([W, U, L, A, W, L], [W, R, L, L, A, U])
    assert a.n_epochs == 4
    assert a.confusion[0] == [2, 0, 0, 0]  # device absent at 4 counts as wake
    assert a.confusion[1] == [1, 1, 0, 0]  # device unscored at 5 counts as wake
    assert a.accuracy == 0.75
    assert a.per_stage["deep"] == {"sensitivity": None, "precision": None, "specificity": 1.0}


def test_agreement_degenerate_cases() -> None:
    a = agreement([U, A], [W, W])
    assert (a.n_epochs, a.accuracy, a.kappa) == (0, None, None)
    one_class = agreement([W, W], [W, W])
    assert one_class.accuracy == 1.0
    assert one_class.kappa is None  # chance agreement is 1: kappa undefined
    with pytest.raises(ValueError):
        agreement([W, W], [W])
    with pytest.raises(ValueError):
        agreement([W], [W], classes=5)


def test_agreement_to_dict_is_json_friendly() -> None:
    a = agreement([W, L, D, R], [W, L, L, R])
    assert isinstance(a, Agreement)
    d = a.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["classes"] == ["wake", "light", "deep", "rem"]
    assert d["confusion"][2] == [0, 1, 0, 0]


def test_bland_altman_simple() -> None:
    out = bland_altman([10.0, 20.0, 30.0, None, 4.0], [8.0, 21.0, 25.0, 5.0, math.nan])
    # differences 2, -1, 5: mean 2, squared deviations 0 + 9 + 9 = 18, sd = sqrt(18 / 2) = 3
    assert out["n"] == 3
    assert out["bias"] == pytest.approx(2.0)
    assert out["sd"] == pytest.approx(3.0)
    assert out["loa_low"] == pytest.approx(2.0 - 1.96 * 3.0)
    assert out["loa_high"] == pytest.approx(2.0 + 1.96 * 3.0)


def test_bland_altman_too_few_pairs() -> None:
    assert bland_altman([1.0], [3.0]) == {
        "bias": -2.0,
        "sd": None,
        "loa_low": None,
        "loa_high": None,
        "n": 1,
    }
    assert bland_altman([None], [1.0])["bias"] is None
    with pytest.raises(ValueError):
        bland_altman([1.0, 2.0], [1.0])


def test_stage_minutes_counts_absent_as_wake_and_skips_unscored() -> None:
    hyp = [ABSENT, 0, 0, 1, 1, 1, UNSCORED, 2, 3, 3, ABSENT]
    assert stage_minutes(hyp) == {"wake": 2.0, "light": 1.5, "deep": 0.5, "rem": 1.0}
    # The minutes of each stage are the SleepMetrics' ones; wake is what is left in bed.
    m = sleep_metrics(hyp)
    got = stage_minutes(hyp, epoch_s=60.0)
    assert (got["light"], got["deep"], got["rem"]) == (3.0, 1.0, 2.0)
    assert stage_minutes(hyp)["light"] == m.light_min
    assert stage_minutes([]) == {"wake": 0.0, "light": 0.0, "deep": 0.0, "rem": 0.0}
    with pytest.raises(ValueError):
        stage_minutes([7])
    with pytest.raises(ValueError):
        stage_minutes([0], epoch_s=0.0)
