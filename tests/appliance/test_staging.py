"""The stagers: the cards match the code's features, the morning pass re-scores a stored night."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import synthetic

from appliance.config import Config
from appliance.epochs import FEATURE_NAMES, MORNING_FEATURE_NAMES
from appliance.errors import ModelMismatch
from appliance.frames import ABSENT, EpochFeatures
from appliance.pipeline import Pipeline
from appliance.staging import Stager, model_path, refine_night, smooth_probs
from appliance.store import Store


def test_the_shipped_cards_name_the_codes_features() -> None:
    live = json.loads(model_path("live").with_suffix(".json").read_text())
    morning = json.loads(model_path("morning").with_suffix(".json").read_text())
    assert tuple(live["feature_names"]) == FEATURE_NAMES
    assert tuple(morning["feature_names"]) == MORNING_FEATURE_NAMES
    assert morning["smooth_epochs"] >= 1
    # The markdown cards come from the same run: they cite the cross-validated kappa of the JSON.
    for card, name in ((live, "live"), (morning, "morning")):
        kappa = card["metrics"]["loso"]["pooled"]["kappa"]
        md = model_path(name).with_suffix(".md").read_text()
        assert f"{kappa:.3f}" in md
        assert "python -m models.train_live --data ../shared/data" in md


def test_a_card_that_differs_from_the_code_is_refused(tmp_path: Path) -> None:
    src = model_path("live")
    shutil.copy(src, tmp_path / "live.onnx")
    card = json.loads(src.with_suffix(".json").read_text())
    card["feature_names"] = [*card["feature_names"][:-1], "something_else"]
    (tmp_path / "live.json").write_text(json.dumps(card))
    with pytest.raises(ModelMismatch, match="something_else"):
        Stager(tmp_path / "live.onnx")
    # The morning model is checked against the morning features, not the live ones.
    with pytest.raises(ModelMismatch):
        Stager(model_path("morning"))


def test_smoothing_spreads_a_spike_and_keeps_rows_normalised() -> None:
    p = np.tile([0.9, 0.1, 0.0, 0.0], (9, 1))
    p[4] = [0.0, 0.0, 0.0, 1.0]
    s = smooth_probs(p, 5)
    assert np.allclose(s.sum(axis=1), 1.0)
    assert np.argmax(s[4]) == 0  # a one-epoch REM blip inside wake is outvoted
    assert math.isclose(s[4, 3], 0.2)
    assert np.array_equal(smooth_probs(p, 1), p)


def _stored_night(tmp_path: Path) -> list[EpochFeatures]:
    """A 20-min synthetic night through the live pipeline into the store, and read back."""
    stager = Stager()
    pipe = Pipeline(Config(), stager)
    fr = synthetic.frames(1200.0, moving=((300.0, 330.0),))
    staged = pipe.update(fr).epochs + pipe.flush().epochs
    with Store.open(tmp_path / "s.sqlite") as store:
        sid = store.start_session(float(fr.t_s[0]), tz="UTC", source="test")
        for ep in staged:
            store.add_epoch(sid, ep, FEATURE_NAMES)
        rows = store.epochs(sid)
    assert len(rows) == len(staged) >= 39
    return [r.to_staged(FEATURE_NAMES).features for r in rows]


def test_refine_night_rescores_a_stored_night(tmp_path: Path) -> None:
    feats = _stored_night(tmp_path)
    stages = refine_night(feats)
    assert len(stages) == len(feats)
    for f, st in zip(feats, stages, strict=True):
        assert (st == ABSENT) == (f.present_fraction < 0.5)
        assert st in (ABSENT, 0, 1, 2, 3)
    assert sum(st != ABSENT for st in stages) >= 30  # the sleeper is seen most of the night
    # Stored features rebuild the same input as the live ones (NaN kept as NaN).
    again = refine_night(feats)
    assert again == stages
    assert refine_night([]) == []


def test_refine_night_marks_absent_epochs(tmp_path: Path) -> None:
    feats = _stored_night(tmp_path)
    gone = EpochFeatures(
        feats[-1].t_s + 30.0,
        feats[-1].index + 1,
        0.0,
        tuple(float("nan") for _ in FEATURE_NAMES),
        None,
        None,
        None,
        0.0,
        0.0,
    )
    stages = refine_night([*feats, gone])
    assert stages[-1] == ABSENT
    assert len(stages) == len(feats) + 1
