"""Sleep staging with ONNX models: Wake / Light / Deep / REM for each epoch.

The **live** model is causal: it sees one epoch's features, which (appliance.epochs) summarise
only that epoch and the ones before it; its verdicts feed the smart alarm as each epoch completes.
The **morning** model re-scores a whole stored night (`refine_night`): it also sees the night's
context after each epoch (`appliance.epochs.night_matrix`), and its probabilities are smoothed
over a few epochs, for the final hypnogram of the morning report.

Each model ships in the `models` package with a JSON card naming the features it was trained on;
loading checks them against the code's (`FEATURE_NAMES`, `MORNING_FEATURE_NAMES`) and raises
`ModelMismatch` on any difference, so a model and the code can never silently disagree.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from appliance.epochs import FEATURE_NAMES, MORNING_FEATURE_NAMES, night_matrix
from appliance.errors import ModelMismatch
from appliance.frames import ABSENT, STAGE_NAMES, EpochFeatures, StagedEpoch

__all__ = [
    "MIN_PRESENT_FRACTION",
    "ModelCard",
    "Stager",
    "model_path",
    "refine_night",
    "smooth_probs",
]

log = logging.getLogger(__name__)

MIN_PRESENT_FRACTION = 0.5
"""An epoch in which the user was seen less than this share of the time is scored ABSENT."""


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What a model file promises: its inputs, outputs and provenance (the JSON beside it)."""

    name: str
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    trained_on: str
    training_records: tuple[str, ...]
    metrics: dict[str, object]
    smooth_epochs: int = 1


def model_path(name: str = "live") -> Path:
    """Path of a shipped model file, `models/<name>.onnx`."""
    return Path(str(resources.files("models").joinpath(f"{name}.onnx")))


class Stager:
    """Scores `EpochFeatures` with an ONNX classifier.

    Args:
        path: The .onnx file; its card is the .json beside it.
        feature_names: The features the code computes for it (the morning model's are
            `MORNING_FEATURE_NAMES`).

    Raises:
        ModelMismatch: the file or card is missing, or its features/classes differ from the code's.
    """

    def __init__(
        self, path: Path | None = None, feature_names: Sequence[str] = FEATURE_NAMES
    ) -> None:
        import onnxruntime as ort  # deferred: importing it costs ~0.2 s

        expected = tuple(feature_names)
        p = path or model_path("live")
        card_p = p.with_suffix(".json")
        try:
            raw = json.loads(card_p.read_text(encoding="utf-8"))
            self.card = ModelCard(
                name=str(raw["name"]),
                feature_names=tuple(raw["feature_names"]),
                classes=tuple(raw["classes"]),
                trained_on=str(raw.get("trained_on", "")),
                training_records=tuple(str(r) for r in raw.get("training_records", ())),
                metrics=dict(raw.get("metrics", {})),
                smooth_epochs=max(1, int(raw.get("smooth_epochs", 1))),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelMismatch(f"model card {card_p}: {e}") from None
        if self.card.feature_names != expected:
            missing = set(expected) ^ set(self.card.feature_names)
            raise ModelMismatch(
                f"{p.name}: features differ from the code's ({sorted(missing) or 'order'})"
            )
        if self.card.classes != STAGE_NAMES:
            raise ModelMismatch(f"{p.name}: classes {self.card.classes} != {STAGE_NAMES}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise ModelMismatch(f"cannot load {p}: {e}") from None
        inp = self._sess.get_inputs()[0]
        self._input = inp.name
        width = inp.shape[1] if len(inp.shape) == 2 else None
        if isinstance(width, int) and width != len(expected):
            raise ModelMismatch(f"{p.name}: input width {width} != {len(expected)}")
        outs = [o.name for o in self._sess.get_outputs()]
        self._prob_out = next((o for o in outs if "prob" in o), outs[-1])
        log.info("stager loaded model=%s features=%d", self.card.name, len(expected))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 4) for feature rows `x` (n, n_features)."""
        res = self._sess.run([self._prob_out], {self._input: np.asarray(x, np.float32)})[0]
        if isinstance(res, list):  # ZipMap output: list of {class: prob}
            res = np.array([[row[k] for k in sorted(row)] for row in res], np.float32)
        return np.asarray(res, np.float32)

    def update(self, ep: EpochFeatures) -> StagedEpoch:
        """Score one epoch; ABSENT when the user was not there long enough."""
        if ep.present_fraction < MIN_PRESENT_FRACTION:
            return StagedEpoch(ep.t_s, ep.index, ABSENT, (0.0, 0.0, 0.0, 0.0), 0.0, ep)
        p = self.predict_proba(np.asarray([ep.values], np.float32))[0]
        k = int(np.argmax(p))
        probs = (float(p[0]), float(p[1]), float(p[2]), float(p[3]))
        return StagedEpoch(ep.t_s, ep.index, k, probs, float(p[k]), ep)


def smooth_probs(p: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of class probabilities over `window` epochs (edges: shorter).

    Args:
        p: (n, n_classes) probabilities in epoch order.
        window: Odd window length, epochs; 1 returns `p` unchanged.

    Returns:
        (n, n_classes) smoothed probabilities (rows still sum to 1).
    """
    p = np.asarray(p, float)
    if window <= 1 or p.shape[0] == 0:
        return p
    half = window // 2
    c = np.vstack([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
    i = np.arange(p.shape[0])
    lo, hi = np.clip(i - half, 0, p.shape[0]), np.clip(i + half + 1, 0, p.shape[0])
    return np.asarray((c[hi] - c[lo]) / (hi - lo)[:, None], float)


@lru_cache(maxsize=4)
def _morning_stager(path: Path) -> Stager:
    return Stager(path, MORNING_FEATURE_NAMES)


def refine_night(features: Sequence[EpochFeatures], path: Path | None = None) -> list[int]:
    """Re-score a whole stored night with the morning model (it may use the night's future).

    Args:
        features: Every epoch of the night in order, as the live stager saw them (the store
            keeps them: `EpochRow.to_staged(FEATURE_NAMES).features`).
        path: The morning model (default: the shipped `models/morning.onnx`).

    Returns:
        One hypnogram code per epoch: a `Stage` value, or `ABSENT` where the user was seen less
        than `MIN_PRESENT_FRACTION` of the epoch.

    Raises:
        ModelMismatch: the morning model is missing or does not match the code's features.
    """
    if not features:
        return []
    stager = _morning_stager(path or model_path("morning"))
    p = smooth_probs(stager.predict_proba(night_matrix(features)), stager.card.smooth_epochs)
    stages = np.argmax(p, axis=1)
    return [
        ABSENT if f.present_fraction < MIN_PRESENT_FRACTION else int(k)
        for f, k in zip(features, stages, strict=True)
    ]
