"""`appliance eval`: the documented JSON fields, both input paths, the live model's causality, the
hypnogram and Bland–Altman PNGs."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import synthetic

from appliance.cli import main
from appliance.config import Config
from appliance.eval_plots import hypnogram_png, write_plots
from appliance.evaluate import NightScore, evaluate, metric_pairs
from appliance.frames import ABSENT, UNSCORED
from appliance.pipeline import Pipeline
from appliance.report_png import STAGE_COLOURS
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
    assert isinstance(metrics, dict) and set(metrics) == {
        "tst",
        "se",
        "sol",
        "waso",
        "wake_min",
        "light_min",
        "deep_min",
        "rem_min",
    }
    for m in metrics.values():
        assert {"bias", "loa_low", "loa_high", "n"} <= set(m)


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


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's signature and IHDR chunk (raises on anything else)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


def _has_colour(rgb: np.ndarray, hex_colour: str) -> bool:
    want = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], float) / 255.0
    return bool(np.any(np.all(np.abs(rgb[..., :3] - want) < 1.5 / 255.0, axis=-1)))


def test_eval_plots_writes_a_hypnogram_per_night_and_a_bland_altman_per_metric(
    one_night: Path, tmp_path: Path
) -> None:
    out_path, plots = tmp_path / "eval.json", tmp_path / "plots"
    args = ["eval", "--data", str(one_night), "--json", str(out_path), "--plots", str(plots)]
    assert main(args) == 0
    out = json.loads(out_path.read_text())
    metrics = ("tst", "se", "sol", "waso", "wake_min", "light_min", "deep_min", "rem_min")
    expected = {"slp67x_hypnogram.png", *(f"bland_altman_{m}.png" for m in metrics)}
    assert {p.name for p in plots.iterdir()} == expected
    assert sorted(Path(p).name for p in out["plots"]) == sorted(expected)
    assert out["metric_units"]["se"] == "%" and out["metric_units"]["rem_min"] == "min"
    for p in plots.iterdir():
        w, h = _png_size(p)
        # 80 dpi: the hypnogram pair 10 x 4 in, a Bland-Altman plot 6 x 4.2 in.
        assert (w, h) == ((800, 320) if "hypnogram" in p.name else (480, 336))
        assert 2_000 < p.stat().st_size < 200_000


def test_hypnogram_pair_draws_each_panel_in_its_stages_colours(tmp_path: Path) -> None:
    import matplotlib.image

    # Experts: wake then light then deep, never REM; the device calls REM at the end.
    truth = np.array([UNSCORED] * 4 + [0] * 40 + [1] * 80 + [2] * 40 + [UNSCORED] * 4, np.int8)
    device = np.array([0] * 4 + [0] * 30 + [1] * 90 + [2] * 20 + [3] * 20 + [ABSENT] * 4, np.int8)
    path = tmp_path / "n_hypnogram.png"
    hypnogram_png(NightScore("n1", "s1", truth, device, {}), path, title="t")
    rgb = matplotlib.image.imread(path)
    h, w = rgb.shape[:2]
    # The panels: experts above, device below; the legend (all colours) sits right of both.
    top, bottom = rgb[: h // 2, : int(w * 0.85)], rgb[h // 2 :, : int(w * 0.85)]
    for stage in ("wake", "light", "deep"):
        assert _has_colour(top, STAGE_COLOURS[stage]) and _has_colour(bottom, STAGE_COLOURS[stage])
    assert not _has_colour(top, STAGE_COLOURS["rem"])
    assert _has_colour(bottom, STAGE_COLOURS["rem"])


def test_stage_minutes_are_bland_altman_entries(tmp_path: Path) -> None:
    # Night a: the device turns 10 light epochs into REM; night b: 4 wake epochs into light.
    truth_a = np.array([0] * 10 + [1] * 60 + [2] * 20 + [3] * 10, np.int8)
    dev_a = truth_a.copy()
    dev_a[20:30] = 3
    truth_b = np.array([0] * 20 + [1] * 80, np.int8)
    dev_b = truth_b.copy()
    dev_b[:4] = 1
    scores = [
        NightScore("a", "sa", truth_a, dev_a, {}),
        NightScore("b", "sb", truth_b, dev_b, {}),
    ]
    m = metric_pairs(scores)
    assert m["rem_min"]["bias"] == pytest.approx((5.0 + 0.0) / 2)
    assert m["light_min"]["bias"] == pytest.approx((-5.0 + 2.0) / 2)
    assert m["wake_min"]["bias"] == pytest.approx((0.0 - 2.0) / 2)
    assert m["deep_min"] == {"bias": 0.0, "sd": 0.0, "loa_low": 0.0, "loa_high": 0.0, "n": 2}
    assert m["light_min"]["n"] == 2 and m["light_min"]["loa_low"] < m["light_min"]["bias"]
    written = write_plots(scores, tmp_path / "p", dpi=40)
    assert [p.name for p in written[:2]] == ["a_hypnogram.png", "b_hypnogram.png"]
    assert all(_png_size(p)[0] > 100 for p in written)
