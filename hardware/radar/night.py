"""A recorded night that drives the simulator: heartbeats, expert stages and expert events.

A night file is one MIT-BIH Polysomnographic Database record converted to `.npz` (format in
`shared/data/README.md`). Only what the simulator needs is kept: the beat times (every annotated
beat, whatever its morphology, without the record-start marker), the experts' stages mapped to the
product's four classes, the experts' per-epoch event flags and, where the file carries one, a
respiration signal. Stages are truth for scoring only; `hardware.radar.physiology` never reads them.

Stage mapping (R&K/AASM → product): 0 W → WAKE, 1 N1 and 2 N2 → LIGHT, 3 N3 → DEEP, 4 REM → REM,
-1 movement time / unscored → UNSCORED.

References:
    Ichimaru Y, Moody GB (1999). Development of the polysomnographic database on CD-ROM.
    Psychiatry and Clinical Neurosciences 53:175–177. doi:10.1046/j.1440-1819.1999.00527.x
    Goldberger AL et al. (2000). PhysioBank, PhysioToolkit, and PhysioNet. Circulation
    101(23):e215–e220. doi:10.1161/01.CIR.101.23.e215
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from appliance.errors import DataError
from appliance.frames import UNSCORED, Stage

__all__ = [
    "EVENT_AROUSAL",
    "EVENT_AROUSAL_BITS",
    "EVENT_CENTRAL_APNEA",
    "EVENT_HYPOPNEA",
    "EVENT_LEG_MOVEMENT",
    "EVENT_MOVEMENT_TIME",
    "EVENT_OBSTRUCTIVE_APNEA",
    "Night",
    "default_night_path",
    "load_night",
    "map_stages",
]

logger = logging.getLogger(__name__)

EVENT_HYPOPNEA = 0b0000000011
"""Event bits 0–1: hypopnea (bit 1 with arousal)."""
EVENT_OBSTRUCTIVE_APNEA = 0b0000001100
"""Event bits 2–3: obstructive apnea (bit 3 with arousal)."""
EVENT_CENTRAL_APNEA = 0b0000110000
"""Event bits 4–5: central apnea (bit 5 with arousal)."""
EVENT_LEG_MOVEMENT = 0b0011000000
"""Event bits 6–7: leg movement (bit 7 with arousal)."""
EVENT_AROUSAL = 0b0100000000
"""Event bit 8: arousal."""
EVENT_MOVEMENT_TIME = 0b1000000000
"""Event bit 9: movement time."""
EVENT_AROUSAL_BITS = EVENT_AROUSAL | 0b0010101010
"""Every bit that carries an arousal (8, and the "+ arousal" bits 1, 3, 5, 7)."""

_REQUIRED_KEYS = ("stages", "events", "epoch0_offset_s", "beat_t_s", "beat_type", "duration_s")
_RECORD_START_MARKER = 9
# raw code + 1 -> product code (raw -1..4; R&K S4 is already merged into 3 in `stages`).
_STAGE_LUT = np.array(
    [UNSCORED, Stage.WAKE, Stage.LIGHT, Stage.LIGHT, Stage.DEEP, Stage.REM], dtype=np.int8
)
_SHIPPED = {"sleeper": "slpdb_slp61.npz", "partner": "slpdb_slp04.npz"}


def map_stages(raw: np.ndarray) -> np.ndarray:
    """Map expert stage codes to the product's hypnogram codes.

    Args:
        raw: (n_epochs,) integer expert codes: 0 W, 1 N1, 2 N2, 3 N3, 4 REM, -1 unscored.

    Returns:
        (n_epochs,) int8 codes: `Stage` values, or `UNSCORED` (-1).

    Raises:
        ValueError: A code is outside -1..4.
    """
    codes = np.asarray(raw).astype(np.int64)
    if codes.size and (codes.min() < -1 or codes.max() > 4):
        raise ValueError(f"stage codes must lie in -1..4, got {codes.min()}..{codes.max()}")
    return _STAGE_LUT[codes + 1]


@dataclass(frozen=True, eq=False)
class Night:
    """One recorded night (arrays are read-only).

    Attributes:
        record: Record name ("slp45").
        subject: Subject id ("slp45"); segments of one night share it.
        beat_t_s: (n_beats,) float64 sorted times of every annotated heartbeat (all beat types
            except the record-start marker), seconds from the start of the record.
        stages: (n_epochs,) int8 expert stage per 30-s epoch as product codes (`Stage`, or
            `UNSCORED`). Truth only: never used to shape a simulated signal.
        events: (n_epochs,) int16 expert event bit flags per epoch (`EVENT_*`).
        epoch0_offset_s: Start of epoch 0, seconds from the start of the record.
        duration_s: Length of the record, seconds.
        epoch_s: Epoch length, seconds (30).
        resp: (n,) float64 respiration signal (any unit), or None when the file has none.
        fs_resp: Sampling rate of `resp`, Hz, or None.
    """

    record: str
    subject: str
    beat_t_s: np.ndarray
    stages: np.ndarray
    events: np.ndarray
    epoch0_offset_s: float
    duration_s: float
    epoch_s: float = 30.0
    resp: np.ndarray | None = None
    fs_resp: float | None = None

    @property
    def n_epochs(self) -> int:
        """Number of expert epochs."""
        return int(self.stages.shape[0])

    def epoch_start_s(self) -> np.ndarray:
        """Return (n_epochs,) float64 start of every expert epoch, seconds of record time."""
        return self.epoch0_offset_s + self.epoch_s * np.arange(self.n_epochs, dtype=np.float64)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def load_night(path: str | Path) -> Night:
    """Load a night `.npz` (no pickle) and map its stages.

    Args:
        path: The `.npz` file (format in `shared/data/README.md`).

    Returns:
        The night, with read-only arrays.

    Raises:
        DataError: The file is missing, unreadable, lacks a required key or holds inconsistent
            arrays; the message names the file.
    """
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in _REQUIRED_KEYS if k not in z.files]
            if missing:
                raise DataError(f"{p}: not a night file, missing keys {', '.join(missing)}")
            data = {k: z[k] for k in z.files}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{p}: cannot read night file ({exc})") from exc

    try:
        beat_type = np.asarray(data["beat_type"]).astype(np.int64)
        beat_all = np.asarray(data["beat_t_s"], dtype=np.float64)
        if beat_all.shape != beat_type.shape or beat_all.ndim != 1:
            raise ValueError("beat_t_s and beat_type differ in shape")
        beats = beat_all[beat_type != _RECORD_START_MARKER]
        if beats.size < 2 or not np.all(np.isfinite(beats)) or np.any(np.diff(beats) < 0):
            raise ValueError("beat_t_s must hold at least two finite, sorted beat times")
        stages = map_stages(np.asarray(data["stages"]).ravel())
        events = np.asarray(data["events"]).astype(np.int16).ravel()
        if events.shape != stages.shape:
            raise ValueError("stages and events differ in length")
        duration_s = float(data["duration_s"])
        offset_s = float(data["epoch0_offset_s"])
        epoch_s = float(data["epoch_s"]) if "epoch_s" in data else 30.0
        if not (np.isfinite(duration_s) and duration_s > 0 and np.isfinite(offset_s)):
            raise ValueError("duration_s must be positive and epoch0_offset_s finite")
        if epoch_s != 30.0:
            raise ValueError(f"epoch_s must be 30, got {epoch_s}")
        resp: np.ndarray | None = None
        fs_resp: float | None = None
        if "resp" in data:
            if "fs_resp" not in data:
                raise ValueError("resp without fs_resp")
            resp = np.asarray(data["resp"], dtype=np.float64).ravel()
            fs_resp = float(data["fs_resp"])
            if not (fs_resp > 0 and resp.size > fs_resp * 60):
                raise ValueError("resp must span over a minute at a positive fs_resp")
        record = str(data["record"]) if "record" in data else p.stem
        subject = str(data["subject"]) if "subject" in data else record
    except (ValueError, TypeError) as exc:
        raise DataError(f"{p}: invalid night file ({exc})") from exc

    night = Night(
        record=record,
        subject=subject,
        beat_t_s=_readonly(beats),
        stages=_readonly(stages),
        events=_readonly(events),
        epoch0_offset_s=offset_s,
        duration_s=duration_s,
        epoch_s=epoch_s,
        resp=None if resp is None else _readonly(resp),
        fs_resp=fs_resp,
    )
    logger.debug("loaded night record=%s beats=%d epochs=%d", record, beats.size, night.n_epochs)
    return night


def default_night_path(role: Literal["sleeper", "partner"]) -> Path:
    """Return the shipped night that drives a role.

    Args:
        role: "sleeper" (slpdb slp61) or "partner" (slpdb slp04).

    Returns:
        Path of the packaged `.npz`.

    Raises:
        ValueError: Unknown role.
    """
    if role not in _SHIPPED:
        raise ValueError(f"role must be 'sleeper' or 'partner', got {role!r}")
    ref = resources.files("hardware.radar").joinpath("nights", _SHIPPED[role])
    return Path(str(ref))
