"""`appliance eval`: the documented JSON fields, both input paths, the live model's causality."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import synthetic

from appliance.cli import main
from appliance.config import Config
from appliance.evaluate import evaluate
from appliance.pipeline import Pipeline
from appliance.staging import Stager

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SHORT = "slpdb_slp67x.npz"  # 1.3 h: the shortest shared night


@pytest.fixture(scope="module")
def one_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("nights")
    shutil.copy(SHARED / SHORT, d / SHORT)
    return d


def _check_fields(out: dict[str, object], classes: int) -> None:
    for key in ("nights", "epochs", "accuracy", "kappa", "per_stage", "confusion", "metrics"):
        assert key in out
    names = ["wake", "light", "deep", "rem"] if classes == 4 else ["wake", "nrem", "rem"]
    per_stage = out["per_stage"]
    assert isinstance(per_stage, dict) and list(per_stage) == names
    for v in per_stage.values():
        assert set(v) == {"sensitivity", "precision", "specificity"}
    confusion = np.asarray(out["confusion"])
    assert confusion.shape == (classes, classes)
    assert int(confusion.sum()) == out["epochs"]
    metrics = out["metrics"]
    assert isinstance(metrics, dict) and set(metrics) == {"tst", "se", "sol", "waso"}
    for m in metrics.values():
        assert {"bias", "loa_low", "loa_high"} <= set(m)


def test_eval_recorded_channels_writes_the_documented_json(
    one_night: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "eval.json"
    assert main(["eval", "--data", str(one_night), "--json", str(out_path)]) == 0
    out = json.loads(out_path.read_text())
    _check_fields(out, 4)
    assert out["nights"] == 1
    assert out["epochs"] == 154  # every expert-scored epoch of the night
    assert out["inputs"]["heartbeat"] == "ECG beats"
    assert out["inputs"]["movement"] == "none"
    assert 0.0 <= out["accuracy"] <= 1.0
    assert "Cohen's kappa" in capsys.readouterr().out


def test_eval_via_radar_three_classes(one_night: Path) -> None:
    out = evaluate(one_night, via_radar=True, classes=3)
    _check_fields(out, 3)
    assert out["inputs"]["path"].startswith("radar")
    # The scene puts the sleeper in bed for the whole recording: every scored epoch is compared.
    assert out["epochs"] == 154


def test_eval_bad_arguments_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no night" in err
    assert main(["eval", "--data", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_live_model_is_causal_later_epochs_never_change_earlier_scores() -> None:
    cfg = Config()
    stager = Stager()
    whole = synthetic.frames(1200.0, moving=((500.0, 520.0), (900.0, 930.0)))
    first = synthetic.split(whole, 12000)[0]  # the first 10 minutes

    def staged(fr: object) -> list[tuple[int, int, tuple[float, ...]]]:
        pipe = Pipeline(cfg, stager)
        out = pipe.update(fr)  # type: ignore[arg-type]
        return [(e.index, e.stage, e.probs) for e in out.epochs]

    short, full = staged(first), staged(whole)
    assert len(short) >= 18 and len(full) > len(short)
    assert full[: len(short)] == short


def test_eval_morning_model_writes_the_documented_json(one_night: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "morning.json"
    args = ["eval", "--data", str(one_night), "--model", "morning", "--json", str(out_path)]
    assert main(args) == 0
    out = json.loads(out_path.read_text())
    _check_fields(out, 4)
    assert out["model"] == "morning"
    assert out["epochs"] == 154
    assert out["inputs"]["path"] == "recorded channels"
    assert {"record", "subject", "epochs", "accuracy", "kappa"} <= set(out["per_night"][0])
