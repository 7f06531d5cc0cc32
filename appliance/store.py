"""The session store: nights, their epochs and events, and the bedroom's environment, on SQLite.

The store is the one place the appliance keeps history, and the user expects nothing to be lost
when the power is cut at 3 a.m. So:

- the database runs in WAL journal mode with ``synchronous=FULL``: every committed write is on
  the storage medium before the call returns, and a crash (or a pulled plug) at any moment leaves
  either the old or the new state, never a torn one;
- every write is its own short transaction (one epoch, one event, one reading), so a crash loses
  at most the write in flight;
- `Store.add_epoch` is idempotent per ``(session_id, idx)``, so a session resumed after a restart
  can re-send an epoch without duplicating it;
- the schema is versioned with ``PRAGMA user_version`` and an ordered list of migrations, each
  applied in one transaction.

Every failure of the database (unopenable path, corrupt file, full disk, a write that breaks a
constraint) leaves the public API as a `StoreError` with a one-line message; callers never see a
raw ``sqlite3`` exception. Bad arguments (a stage code that does not exist, feature names that do
not match the values) raise `ValueError` before anything is written.

JSON columns (``meta``, ``summary``, ``probs``, ``features``) are strict JSON: NaN and infinities
are stored as ``null``, numpy scalars and arrays as plain numbers and lists.

The store is safe to call from several threads (the daemon may use ``asyncio.to_thread``): one
connection is shared behind a lock.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from appliance.alarm_schedule import Alarm
from appliance.errors import StoreError
from appliance.frames import ABSENT, STAGE_NAMES, EpochFeatures, SessionEvent, StagedEpoch

__all__ = [
    "ALARM_STATUSES",
    "HANDLED_STATUSES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AlarmStateRow",
    "EnvironmentRow",
    "EpochRow",
    "EventRow",
    "SessionRow",
    "Store",
]

logger = logging.getLogger(__name__)

_STAGE_CODES: frozenset[int] = frozenset((*range(len(STAGE_NAMES)), ABSENT))

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: the first schema.
    (
        """
        CREATE TABLE sessions (
            id        INTEGER PRIMARY KEY AUTOINCREMENT,
            started_s REAL    NOT NULL,
            ended_s   REAL,
            tz        TEXT    NOT NULL,
            source    TEXT    NOT NULL,
            nap       INTEGER NOT NULL DEFAULT 0 CHECK (nap IN (0, 1)),
            meta      TEXT    NOT NULL DEFAULT '{}',
            summary   TEXT
        )
        """,
        "CREATE INDEX sessions_started ON sessions (started_s)",
        "CREATE INDEX sessions_open ON sessions (started_s) WHERE ended_s IS NULL",
        """
        CREATE TABLE epochs (
            session_id          INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            idx                 INTEGER NOT NULL,
            t_s                 REAL    NOT NULL,
            stage               INTEGER NOT NULL CHECK (stage IN (0, 1, 2, 3, -2)),
            confidence          REAL,
            probs               TEXT    NOT NULL,
            features            TEXT    NOT NULL,
            breath_rate         REAL,
            heart_rate          REAL,
            distance_m          REAL,
            movement            REAL,
            presence_confidence REAL,
            present_fraction    REAL,
            UNIQUE (session_id, idx)
        )
        """,
        "CREATE INDEX epochs_t ON epochs (t_s)",
        """
        CREATE TABLE events (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id INTEGER REFERENCES sessions (id) ON DELETE CASCADE,
            t_s        REAL    NOT NULL,
            kind       TEXT    NOT NULL,
            detail     TEXT    NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX events_session_t ON events (session_id, t_s)",
        "CREATE INDEX events_t ON events (t_s)",
        """
        CREATE TABLE environment (
            id       INTEGER PRIMARY KEY,
            t_s      REAL NOT NULL,
            sensor   TEXT NOT NULL,
            quantity TEXT NOT NULL,
            value    REAL,
            unit     TEXT NOT NULL
        )
        """,
        "CREATE INDEX environment_t ON environment (t_s)",
        "CREATE INDEX environment_quantity_t ON environment (quantity, t_s)",
    ),
    # v2: alarm schedules and the alarm's ring state (appliance.alarm_schedule).
    (
        """
        CREATE TABLE alarms (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            time        TEXT    NOT NULL,
            days        INTEGER NOT NULL CHECK (days BETWEEN 0 AND 127),
            enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
            skip_s      REAL,
            window_min  REAL    NOT NULL DEFAULT 30 CHECK (window_min BETWEEN 0 AND 45),
            sunrise_min REAL    NOT NULL DEFAULT 30 CHECK (sunrise_min BETWEEN 0 AND 60),
            sound       TEXT    NOT NULL DEFAULT 'chimes',
            created_s   REAL    NOT NULL
        )
        """,
        """
        CREATE TABLE alarm_state (
            alarm_id       INTEGER PRIMARY KEY,
            set_s          REAL    NOT NULL,
            status         TEXT    NOT NULL
                CHECK (status IN ('ringing', 'snoozed', 'dismissed', 'missed', 'backstop')),
            rang_at_s      REAL,
            snooze_until_s REAL,
            updated_s      REAL    NOT NULL
        )
        """,
        """
        CREATE TABLE alarm_heartbeat (
            id  INTEGER PRIMARY KEY CHECK (id = 1),
            t_s REAL NOT NULL
        )
        """,
    ),
    # v3: settings that must survive a restart (standby), one JSON value per key.
    ("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",),
    # v4: an alarm's sound is rung; '' is the config's [speaker] sound. Until now every alarm
    # rang the config's sound, so the old default 'chimes' meant just that.
    ("UPDATE alarms SET sound = '' WHERE sound = 'chimes'",),
)
"""Ordered schema migrations: entry ``k`` takes ``user_version`` from ``k`` to ``k + 1``.

Append only; never edit a migration that has shipped. Each entry is a sequence of SQL statements
applied in one transaction together with the ``user_version`` bump.
"""

SCHEMA_VERSION: int = len(MIGRATIONS)
"""The schema version this code writes (``PRAGMA user_version`` after migration)."""


# --------------------------------------------------------------------------------------------
# Row types


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One stored session (a night or a nap).

    Attributes:
        id: Session id, increasing, never reused.
        started_s: Start, UTC epoch seconds.
        ended_s: End, UTC epoch seconds; None while the session is open.
        tz: IANA time zone of the bedroom when the session started ("Europe/Berlin").
        source: What produced it ("radar", "simulated", "replay:<night>").
        nap: True for a daytime nap.
        meta: Free-form metadata, decoded JSON (NaN was stored as None).
        summary: The night's metrics, decoded JSON, or None while the session is open.
    """

    id: int
    started_s: float
    ended_s: float | None
    tz: str
    source: str
    nap: bool
    meta: dict[str, Any]
    summary: dict[str, Any] | None

    @property
    def is_open(self) -> bool:
        """True while the session has not been closed."""
        return self.ended_s is None


@dataclass(frozen=True, slots=True)
class EpochRow:
    """One stored, staged 30-s epoch.

    Attributes:
        session_id: The session it belongs to.
        idx: Epoch number (`StagedEpoch.index`); unique within the session.
        t_s: Start of the epoch, UTC epoch seconds.
        stage: Hypnogram code: 0..3 (`Stage`) or `ABSENT` (-2).
        confidence: Probability of the chosen stage, [0, 1]; NaN if it was not finite.
        probs: Class probabilities (wake, light, deep, rem); NaN where not finite.
        features: Feature name → value; NaN where the value was missing.
        breath_rate_bpm: Median breath rate, breaths/min, or None.
        heart_rate_bpm: Median heart rate, beats/min, or None.
        distance_m: Median distance of the user, metres, or None.
        movement: Mean movement energy, mm/s; NaN if it was not finite.
        presence_confidence: Mean presence confidence, [0, 1]; NaN if it was not finite.
        present_fraction: Share of the epoch with the user seen, [0, 1]; NaN if not finite.
        illuminance_lux: Bedroom light level the epoch was scored with, lx, or None.
        other_fraction: Share of its seconds that were someone else's in the user's zone, [0, 1].
    """

    session_id: int
    idx: int
    t_s: float
    stage: int
    confidence: float
    probs: tuple[float, ...]
    features: dict[str, float]
    breath_rate_bpm: float | None
    heart_rate_bpm: float | None
    distance_m: float | None
    movement: float
    presence_confidence: float
    present_fraction: float
    illuminance_lux: float | None = None
    other_fraction: float = 0.0

    def to_staged(self, feature_names: Sequence[str]) -> StagedEpoch:
        """The `StagedEpoch` this row was written from (features in `feature_names` order)."""
        nan = float("nan")
        probs = (tuple(self.probs) + (nan,) * 4)[:4]
        features = EpochFeatures(
            t_s=self.t_s,
            index=self.idx,
            present_fraction=self.present_fraction,
            values=tuple(float(self.features.get(n, nan)) for n in feature_names),
            other_fraction=self.other_fraction,
            illuminance_lux=self.illuminance_lux,
            breath_rate_bpm=self.breath_rate_bpm,
            heart_rate_bpm=self.heart_rate_bpm,
            distance_m=self.distance_m,
            movement=self.movement,
            presence_confidence=self.presence_confidence,
        )
        return StagedEpoch(
            t_s=self.t_s,
            index=self.idx,
            stage=self.stage,
            probs=(probs[0], probs[1], probs[2], probs[3]),
            confidence=self.confidence,
            features=features,
        )


@dataclass(frozen=True, slots=True)
class EventRow:
    """One stored event.

    Attributes:
        id: Event id, increasing in insertion order.
        session_id: The session it belongs to, or None for an event outside any session.
        t_s: UTC epoch seconds.
        kind: Event kind (see `SessionEvent.kind`).
        detail: Free text or a small JSON string.
    """

    id: int
    session_id: int | None
    t_s: float
    kind: str
    detail: str

    def to_event(self) -> SessionEvent:
        """Return the event as the pipeline's `SessionEvent`."""
        return SessionEvent(t_s=self.t_s, kind=self.kind, detail=self.detail)


@dataclass(frozen=True, slots=True)
class EnvironmentRow:
    """One stored environment reading.

    Attributes:
        t_s: UTC epoch seconds.
        sensor: Sensor name ("sht4x", "tsl2591").
        quantity: What was measured ("temperature", "humidity", "illuminance").
        value: The reading in `unit`; NaN if the reading was not finite.
        unit: Unit of `value` ("degC", "%RH", "lx").
    """

    t_s: float
    sensor: str
    quantity: str
    value: float
    unit: str


ALARM_STATUSES: frozenset[str] = frozenset(
    {"ringing", "snoozed", "dismissed", "missed", "backstop"}
)
HANDLED_STATUSES: frozenset[str] = frozenset({"dismissed", "missed", "backstop"})
"""Statuses that end an occurrence: it never rings again (the others resume after a restart)."""


@dataclass(frozen=True, slots=True)
class AlarmStateRow:
    """Where an alarm's latest occurrence stands (one row per alarm).

    Attributes:
        alarm_id: The alarm.
        set_s: The occurrence's set time, UTC epoch s.
        status: "ringing", "snoozed" (rings again at `snooze_until_s`), "dismissed", "missed"
            (nobody stopped it, or it was first seen too late), "backstop" (rung by
            `appliance alarm backstop` while the daemon was down).
        rang_at_s: When it (last) started ringing, UTC epoch s, or None.
        snooze_until_s: End of the snooze, UTC epoch s, or None.
        updated_s: When the row was written, UTC epoch s.
    """

    alarm_id: int
    set_s: float
    status: str
    rang_at_s: float | None
    snooze_until_s: float | None
    updated_s: float

    @property
    def handled(self) -> bool:
        """True if this occurrence is over (it must not ring again)."""
        return self.status in HANDLED_STATUSES


def _days_mask(days: frozenset[int]) -> int:
    return sum(1 << d for d in days)


def _mask_days(mask: int) -> frozenset[int]:
    return frozenset(d for d in range(7) if mask >> d & 1)


# --------------------------------------------------------------------------------------------
# Encoding helpers


def _jsonable(value: Any) -> Any:
    """Return `value` as plain JSON data: NaN/inf → None, numpy → Python, tuples → lists."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _dumps(value: Any) -> str:
    """Encode `value` as strict, compact JSON (see `_jsonable`)."""
    return json.dumps(_jsonable(value), allow_nan=False, separators=(",", ":"))


_LUX_KEY = "illuminance_lux"
_OTHER_KEY = "other_fraction"
"""Epoch values kept beside the stager's features (not features: the session needs them to resume
its intent scores and its count of epochs that were someone else's)."""


def _feature_json(names: Sequence[str], f: EpochFeatures) -> dict[str, float | None]:
    """The `features` column of an epoch: its stager features, then `_LUX_KEY` and `_OTHER_KEY`."""
    out = {n: _real(v) for n, v in zip(names, f.values, strict=True)}
    out[_LUX_KEY] = _real(f.illuminance_lux)
    out[_OTHER_KEY] = _real(f.other_fraction)
    return out


def _epoch_row(r: tuple[Any, ...]) -> EpochRow:
    """An `epochs` table row as an `EpochRow` (the extra keys of `_feature_json` as attributes)."""
    features = {k: _nan_if_none(v) for k, v in json.loads(r[6]).items()}
    lux = _real(features.pop(_LUX_KEY, None))
    other = _real(features.pop(_OTHER_KEY, None))
    return EpochRow(
        session_id=int(r[0]),
        idx=int(r[1]),
        t_s=float(r[2]),
        stage=int(r[3]),
        confidence=_nan_if_none(r[4]),
        probs=tuple(_nan_if_none(p) for p in json.loads(r[5])),
        features=features,
        breath_rate_bpm=r[7],
        heart_rate_bpm=r[8],
        distance_m=r[9],
        movement=_nan_if_none(r[10]),
        presence_confidence=_nan_if_none(r[11]),
        present_fraction=_nan_if_none(r[12]),
        illuminance_lux=lux,
        other_fraction=0.0 if other is None else other,
    )


def _real(value: float | None) -> float | None:
    """Return `value` as a Python float for a REAL column; None for None, NaN or inf."""
    if value is None:
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _nan_if_none(value: float | None) -> float:
    """Return a stored REAL as a float, with NULL read back as NaN."""
    return math.nan if value is None else float(value)


def _one_line(exc: BaseException) -> str:
    """Return an exception's message on one line."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --------------------------------------------------------------------------------------------
# The store


class Store:
    """The session store: one SQLite file in WAL mode, written one short transaction at a time.

    Create it with `Store.open`; use it as a context manager or call `close`.

    Example:
        >>> with Store.open(path) as store:  # doctest: +SKIP
        ...     sid = store.start_session(clock.now(), tz="Europe/Berlin", source="radar")
        ...     store.add_epoch(sid, staged, FEATURE_NAMES)
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Wrap an open, configured and migrated connection; use `Store.open` instead."""
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._lock = threading.RLock()

    # ---- life cycle ------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, busy_timeout_s: float = 5.0) -> Self:
        """Open (or create) the store at `path` and bring its schema up to date.

        Creates missing parent directories, switches the file to WAL mode with
        ``synchronous=FULL``, turns on foreign keys and applies pending migrations.

        Args:
            path: The database file.
            busy_timeout_s: How long a write waits for another connection's lock, seconds.

        Returns:
            The open store.

        Raises:
            StoreError: The path cannot be created or opened, the file is not a database (or is
                corrupt), it was written by a newer version of the appliance, WAL mode is not
                available there, or a migration failed.
        """
        path = Path(path)
        try:
            if path.parent.exists() and not path.parent.is_dir():
                raise NotADirectoryError(f"{path.parent} is not a directory")
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store's directory {path.parent}: {_one_line(exc)}"
            ) from exc
        try:
            conn = sqlite3.connect(
                str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path}: {_one_line(exc)}") from exc
        try:
            _configure(conn, busy_timeout_s)
            _migrate(conn, path)
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open store {path}: {_one_line(exc)}") from exc
        logger.info("store opened path=%s schema=%d", path, SCHEMA_VERSION)
        return cls(conn, path)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def closed(self) -> bool:
        """True once `close` has been called."""
        return self._conn is None

    def close(self) -> None:
        """Close the store (checkpointing the WAL); calling it again does nothing.

        Raises:
            StoreError: SQLite failed while closing.
        """
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot close store {self._path}: {_one_line(exc)}") from exc
        logger.info("store closed path=%s", self._path)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- internals -------------------------------------------------------------------------

    @contextmanager
    def _reading(self, what: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and turn SQLite errors while doing `what` into `StoreError`."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"cannot {what}: store {self._path} is closed")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"cannot {what}: {_one_line(exc)}") from exc

    @contextmanager
    def _writing(self, what: str) -> Iterator[sqlite3.Connection]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction; roll back on any error."""
        with self._reading(what) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        logger.warning("store rollback failed while trying to %s", what)
                raise

    # ---- writing ---------------------------------------------------------------------------

    def start_session(
        self,
        t_s: float,
        *,
        tz: str,
        source: str,
        meta: Mapping[str, Any] | None = None,
        nap: bool = False,
    ) -> int:
        """Record the start of a session.

        Args:
            t_s: Start, UTC epoch seconds.
            tz: IANA time zone of the bedroom ("Europe/Berlin").
            source: What produces the session ("radar", "simulated", "replay:<night>").
            meta: Free-form JSON-able metadata (config digest, model version...); numpy values
                and NaN are accepted (NaN is stored as null).
            nap: True for a daytime nap.

        Returns:
            The new session's id.

        Raises:
            ValueError: `t_s` is not finite.
            TypeError: `meta` holds a value that cannot be stored as JSON.
            StoreError: The write failed.
        """
        started = _real(t_s)
        if started is None:
            raise ValueError(f"session start must be finite, got {t_s!r}")
        meta_json = _dumps(dict(meta) if meta is not None else {})
        with self._writing("start a session") as conn:
            cur = conn.execute(
                "INSERT INTO sessions (started_s, tz, source, nap, meta) VALUES (?, ?, ?, ?, ?)",
                (started, str(tz), str(source), int(bool(nap)), meta_json),
            )
            session_id = cur.lastrowid
        if session_id is None:  # pragma: no cover - sqlite3 always sets it after an INSERT
            raise StoreError("cannot start a session: no id returned")
        logger.info("session started id=%d source=%s nap=%s", session_id, source, nap)
        return session_id

    def add_epoch(self, session_id: int, epoch: StagedEpoch, feature_names: Sequence[str]) -> None:
        """Store one staged epoch, in its own transaction.

        Idempotent per ``(session_id, epoch.index)``: storing the same index again replaces the
        row with the new values, so a resumed session never duplicates an epoch.

        Args:
            session_id: An existing session's id.
            epoch: The stager's verdict, with the features it was scored from.
            feature_names: Names aligned with ``epoch.features.values``
                (`appliance.epochs.FEATURE_NAMES`).

        Raises:
            ValueError: The stage code is not 0..3 or `ABSENT`, the epoch time is not finite, or
                `feature_names` does not match the feature values (length or duplicates).
            StoreError: The session does not exist, or the write failed.
        """
        if int(epoch.stage) not in _STAGE_CODES:
            raise ValueError(f"epoch {epoch.index}: stage code {epoch.stage!r} is not storable")
        t_s = _real(epoch.t_s)
        if t_s is None:
            raise ValueError(f"epoch {epoch.index}: time must be finite, got {epoch.t_s!r}")
        f = epoch.features
        names = [str(n) for n in feature_names]
        if len(names) != len(f.values):
            raise ValueError(
                f"epoch {epoch.index}: {len(names)} feature names for {len(f.values)} values"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"epoch {epoch.index}: duplicate feature names")
        row = (
            int(session_id),
            int(epoch.index),
            t_s,
            int(epoch.stage),
            _real(epoch.confidence),
            _dumps([_real(p) for p in epoch.probs]),
            _dumps(_feature_json(names, f)),
            _real(f.breath_rate_bpm),
            _real(f.heart_rate_bpm),
            _real(f.distance_m),
            _real(f.movement),
            _real(f.presence_confidence),
            _real(f.present_fraction),
        )
        with self._writing(f"store epoch {epoch.index} of session {session_id}") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO epochs (session_id, idx, t_s, stage, confidence, probs,"
                " features, breath_rate, heart_rate, distance_m, movement, presence_confidence,"
                " present_fraction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        logger.debug("epoch stored session=%d idx=%d stage=%d", session_id, epoch.index, row[3])

    def add_event(self, session_id: int | None, event: SessionEvent) -> None:
        """Store one event, in its own transaction.

        Args:
            session_id: The session it belongs to, or None for an event outside any session
                (an alarm with nobody in bed).
            event: The event.

        Raises:
            ValueError: The event time is not finite.
            StoreError: The session does not exist, or the write failed.
        """
        t_s = _real(event.t_s)
        if t_s is None:
            raise ValueError(f"event {event.kind!r}: time must be finite, got {event.t_s!r}")
        sid = None if session_id is None else int(session_id)
        with self._writing(f"store event {event.kind!r}") as conn:
            conn.execute(
                "INSERT INTO events (session_id, t_s, kind, detail) VALUES (?, ?, ?, ?)",
                (sid, t_s, str(event.kind), str(event.detail)),
            )
        logger.debug("event stored session=%s kind=%s", sid, event.kind)

    def add_environment(
        self, t_s: float, sensor: str, quantity: str, value: float, unit: str
    ) -> None:
        """Store one environment reading, in its own transaction.

        Args:
            t_s: UTC epoch seconds.
            sensor: Sensor name ("sht4x").
            quantity: What was measured ("temperature").
            value: The reading in `unit`; a non-finite value is stored as null (read back NaN).
            unit: Unit of `value` ("degC").

        Raises:
            ValueError: `t_s` is not finite.
            StoreError: The write failed.
        """
        t = _real(t_s)
        if t is None:
            raise ValueError(f"reading time must be finite, got {t_s!r}")
        with self._writing(f"store a {quantity} reading") as conn:
            conn.execute(
                "INSERT INTO environment (t_s, sensor, quantity, value, unit)"
                " VALUES (?, ?, ?, ?, ?)",
                (t, str(sensor), str(quantity), _real(value), str(unit)),
            )

    def close_session(self, session_id: int, ended_s: float, summary: Mapping[str, Any]) -> None:
        """Mark a session as ended and store its summary.

        Closing an already closed session replaces its end and summary (a morning pass may
        refine the night's metrics).

        Args:
            session_id: An existing session's id.
            ended_s: End, UTC epoch seconds.
            summary: The night's metrics, JSON-able (numpy values and NaN accepted).

        Raises:
            ValueError: `ended_s` is not finite.
            TypeError: `summary` holds a value that cannot be stored as JSON.
            StoreError: The session does not exist, or the write failed.
        """
        ended = _real(ended_s)
        if ended is None:
            raise ValueError(f"session end must be finite, got {ended_s!r}")
        summary_json = _dumps(dict(summary))
        with self._writing(f"close session {session_id}") as conn:
            cur = conn.execute(
                "UPDATE sessions SET ended_s = ?, summary = ? WHERE id = ?",
                (ended, summary_json, int(session_id)),
            )
            if cur.rowcount != 1:
                raise StoreError(f"cannot close session {session_id}: no such session")
        logger.info("session closed id=%d", session_id)

    # ---- reading ---------------------------------------------------------------------------

    _SESSION_COLUMNS = "id, started_s, ended_s, tz, source, nap, meta, summary"

    @staticmethod
    def _session_row(r: tuple[Any, ...]) -> SessionRow:
        return SessionRow(
            id=int(r[0]),
            started_s=float(r[1]),
            ended_s=None if r[2] is None else float(r[2]),
            tz=r[3],
            source=r[4],
            nap=bool(r[5]),
            meta=json.loads(r[6]) if r[6] else {},
            summary=None if r[7] is None else json.loads(r[7]),
        )

    def open_session(self) -> SessionRow | None:
        """Return the latest session that has not been closed, to resume it after a restart.

        Returns:
            The most recently started open session, or None if every session is closed.

        Raises:
            StoreError: The read failed.
        """
        with self._reading("find the open session") as conn:
            r = conn.execute(
                f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE ended_s IS NULL"
                " ORDER BY started_s DESC, id DESC LIMIT 1"
            ).fetchone()
            return None if r is None else self._session_row(r)

    def sessions(self, limit: int = 30) -> list[SessionRow]:
        """Return the most recent sessions, newest first.

        Args:
            limit: At most this many sessions, >= 0.

        Returns:
            Sessions ordered by start time, newest first.

        Raises:
            ValueError: `limit` is negative.
            StoreError: The read failed.
        """
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        with self._reading("list sessions") as conn:
            rows = conn.execute(
                f"SELECT {self._SESSION_COLUMNS} FROM sessions"
                " ORDER BY started_s DESC, id DESC LIMIT ?",
                (int(limit),),
            ).fetchall()
            return [self._session_row(r) for r in rows]

    def session(self, session_id: int) -> SessionRow | None:
        """Return one session, or None if there is no such id.

        Raises:
            StoreError: The read failed.
        """
        with self._reading(f"read session {session_id}") as conn:
            r = conn.execute(
                f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE id = ?", (int(session_id),)
            ).fetchone()
            return None if r is None else self._session_row(r)

    def epochs(self, session_id: int) -> list[EpochRow]:
        """Return a session's epochs, ordered by epoch index (empty for an unknown session).

        Raises:
            StoreError: The read failed.
        """
        with self._reading(f"read the epochs of session {session_id}") as conn:
            rows = conn.execute(
                "SELECT session_id, idx, t_s, stage, confidence, probs, features, breath_rate,"
                " heart_rate, distance_m, movement, presence_confidence, present_fraction"
                " FROM epochs WHERE session_id = ? ORDER BY idx",
                (int(session_id),),
            ).fetchall()
        return [_epoch_row(r) for r in rows]

    def events(self, session_id: int | None) -> list[EventRow]:
        """Return a session's events in time order (insertion order for equal times).

        Args:
            session_id: A session's id, or None for the events outside any session.

        Raises:
            StoreError: The read failed.
        """
        with self._reading(f"read the events of session {session_id}") as conn:
            if session_id is None:
                cur = conn.execute(
                    "SELECT id, session_id, t_s, kind, detail FROM events"
                    " WHERE session_id IS NULL ORDER BY t_s, id"
                )
            else:
                cur = conn.execute(
                    "SELECT id, session_id, t_s, kind, detail FROM events"
                    " WHERE session_id = ? ORDER BY t_s, id",
                    (int(session_id),),
                )
            return [EventRow(int(r[0]), r[1], float(r[2]), r[3], r[4]) for r in cur.fetchall()]

    def environment(self, t0_s: float, t1_s: float) -> list[EnvironmentRow]:
        """Return the environment readings with ``t0_s <= t_s < t1_s``, in time order.

        Args:
            t0_s: Start of the interval, UTC epoch seconds (inclusive).
            t1_s: End of the interval, UTC epoch seconds (exclusive).

        Raises:
            StoreError: The read failed.
        """
        with self._reading("read environment readings") as conn:
            rows = conn.execute(
                "SELECT t_s, sensor, quantity, value, unit FROM environment"
                " WHERE t_s >= ? AND t_s < ? ORDER BY t_s, id",
                (float(t0_s), float(t1_s)),
            ).fetchall()
        return [EnvironmentRow(float(r[0]), r[1], r[2], _nan_if_none(r[3]), r[4]) for r in rows]

    # ---- alarms ----------------------------------------------------------------------------

    _ALARM_COLUMNS = "id, time, days, enabled, skip_s, window_min, sunrise_min, sound, created_s"

    @staticmethod
    def _alarm_row(r: tuple[Any, ...]) -> Alarm:
        return Alarm(
            id=int(r[0]),
            time=str(r[1]),
            days=_mask_days(int(r[2])),
            enabled=bool(r[3]),
            skip_s=None if r[4] is None else float(r[4]),
            window_min=float(r[5]),
            sunrise_min=float(r[6]),
            sound=str(r[7]),
            created_s=float(r[8]),
        )

    def alarms(self) -> list[Alarm]:
        """Return every alarm, by id.

        Raises:
            StoreError: The read failed.
        """
        with self._reading("read the alarms") as conn:
            rows = conn.execute(f"SELECT {self._ALARM_COLUMNS} FROM alarms ORDER BY id").fetchall()
        return [self._alarm_row(r) for r in rows]

    def alarm(self, alarm_id: int) -> Alarm | None:
        """Return one alarm, or None if there is no such id.

        Raises:
            StoreError: The read failed.
        """
        with self._reading(f"read alarm {alarm_id}") as conn:
            r = conn.execute(
                f"SELECT {self._ALARM_COLUMNS} FROM alarms WHERE id = ?", (int(alarm_id),)
            ).fetchone()
        return None if r is None else self._alarm_row(r)

    def put_alarm(self, alarm: Alarm, *, new: bool = False) -> Alarm:
        """Insert or replace an alarm, in one transaction.

        Args:
            alarm: The alarm; with `new`, its id is ignored and a fresh one (≥ 1, never reused)
                is given.
            new: Insert under a new id instead of writing `alarm.id`.

        Returns:
            The alarm as stored (with its id).

        Raises:
            ValueError: a value the schema rejects (window outside 0–45, a non-finite time).
            StoreError: The write failed.
        """
        if not (0.0 <= alarm.window_min <= 45.0 and 0.0 <= alarm.sunrise_min <= 60.0):
            raise ValueError(f"alarm {alarm.id}: window or sunrise out of range")
        created = _real(alarm.created_s)
        if created is None:
            raise ValueError(f"alarm {alarm.id}: created_s must be finite")
        values = (
            alarm.time,
            _days_mask(alarm.days),
            int(alarm.enabled),
            _real(alarm.skip_s),
            float(alarm.window_min),
            float(alarm.sunrise_min),
            alarm.sound,
            created,
        )
        cols = "time, days, enabled, skip_s, window_min, sunrise_min, sound, created_s"
        with self._writing("store an alarm") as conn:
            if new:
                # AUTOINCREMENT: ids start at 1 (0 is the config's alarm) and are never reused.
                cur = conn.execute(
                    f"INSERT INTO alarms ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values
                )
                alarm_id = int(cur.lastrowid or 0)
            else:
                alarm_id = int(alarm.id)
                conn.execute(
                    f"INSERT OR REPLACE INTO alarms (id, {cols})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (alarm_id, *values),
                )
        logger.info("alarm stored id=%d time=%s", alarm_id, alarm.time)
        return Alarm(
            id=alarm_id,
            time=alarm.time,
            days=alarm.days,
            enabled=alarm.enabled,
            skip_s=alarm.skip_s,
            window_min=alarm.window_min,
            sunrise_min=alarm.sunrise_min,
            sound=alarm.sound,
            created_s=alarm.created_s,
        )

    def delete_alarm(self, alarm_id: int) -> bool:
        """Delete an alarm and its state.

        Returns:
            True if it existed.

        Raises:
            StoreError: The write failed.
        """
        with self._writing(f"delete alarm {alarm_id}") as conn:
            cur = conn.execute("DELETE FROM alarms WHERE id = ?", (int(alarm_id),))
            conn.execute("DELETE FROM alarm_state WHERE alarm_id = ?", (int(alarm_id),))
        return cur.rowcount == 1

    def alarm_states(self) -> dict[int, AlarmStateRow]:
        """Return each alarm's latest occurrence state, by alarm id.

        Raises:
            StoreError: The read failed.
        """
        with self._reading("read the alarm state") as conn:
            rows = conn.execute(
                "SELECT alarm_id, set_s, status, rang_at_s, snooze_until_s, updated_s"
                " FROM alarm_state"
            ).fetchall()
        return {
            int(r[0]): AlarmStateRow(
                int(r[0]),
                float(r[1]),
                str(r[2]),
                None if r[3] is None else float(r[3]),
                None if r[4] is None else float(r[4]),
                float(r[5]),
            )
            for r in rows
        }

    def set_alarm_state(
        self,
        alarm_ids: Sequence[int],
        set_s: float,
        status: str,
        *,
        t_s: float,
        rang_at_s: float | None = None,
        snooze_until_s: float | None = None,
    ) -> None:
        """Record where an occurrence stands, for each of `alarm_ids`, in one transaction.

        Args:
            alarm_ids: The alarms ringing together at `set_s`.
            set_s: The occurrence's set time, UTC epoch s.
            status: One of `AlarmStateRow.status`.
            t_s: Now, UTC epoch s.
            rang_at_s: When it (last) started ringing, UTC epoch s.
            snooze_until_s: End of the snooze, UTC epoch s.

        Raises:
            ValueError: an unknown status or a non-finite time.
            StoreError: The write failed.
        """
        if status not in ALARM_STATUSES:
            raise ValueError(f"unknown alarm status {status!r}")
        s, t = _real(set_s), _real(t_s)
        if s is None or t is None:
            raise ValueError("alarm state times must be finite")
        with self._writing(f"store alarm state {status}") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO alarm_state"
                " (alarm_id, set_s, status, rang_at_s, snooze_until_s, updated_s)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (int(i), s, status, _real(rang_at_s), _real(snooze_until_s), t)
                    for i in alarm_ids
                ],
            )

    def beat(self, t_s: float) -> None:
        """Record that the daemon's alarm task is alive at `t_s` (UTC epoch s).

        The backstop stays quiet while the beat is recent.

        Raises:
            StoreError: The write failed.
        """
        with self._writing("store the alarm heartbeat") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO alarm_heartbeat (id, t_s) VALUES (1, ?)", (float(t_s),)
            )

    def heartbeat(self) -> float | None:
        """Return the alarm task's last beat, UTC epoch s, or None.

        Raises:
            StoreError: The read failed.
        """
        with self._reading("read the alarm heartbeat") as conn:
            r = conn.execute("SELECT t_s FROM alarm_heartbeat WHERE id = 1").fetchone()
        return None if r is None else float(r[0])

    # ---- settings --------------------------------------------------------------------------

    def setting(self, key: str, default: Any = None) -> Any:
        """Return the stored value of setting `key` (JSON-decoded), or `default` if unset.

        Raises:
            StoreError: The read failed.
        """
        with self._reading(f"read setting {key}") as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        """Store setting `key` (any JSON-serialisable value), durably.

        Raises:
            StoreError: The write failed.
        """
        with self._writing(f"write setting {key}") as conn:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, _dumps(value)),
            )

    # ---- health ----------------------------------------------------------------------------

    def integrity_ok(self) -> bool:
        """Check the whole file (``PRAGMA integrity_check`` and ``foreign_key_check``).

        This reads every page; on a large store on an SD card it takes a while.

        Returns:
            True if SQLite finds no corruption and no dangling foreign key.

        Raises:
            StoreError: The store is closed, or the check could not run (I/O error, lock).
        """
        with self._reading("check the store's integrity") as conn:
            try:
                problems = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
                dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise
                logger.warning("store integrity check failed path=%s: %s", self._path, exc)
                return False
        if problems != ["ok"] or dangling:
            logger.warning(
                "store integrity problems path=%s first=%s dangling=%d",
                self._path,
                problems[:3],
                len(dangling),
            )
            return False
        return True


# --------------------------------------------------------------------------------------------
# Opening and migrating


def _configure(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    """Set the connection's durability and safety pragmas.

    Raises:
        StoreError: WAL mode could not be enabled.
        sqlite3.Error: The file is not a database, or cannot be read.
    """
    conn.execute(f"PRAGMA busy_timeout = {max(0, int(busy_timeout_s * 1000))}")
    conn.execute("PRAGMA foreign_keys = ON")
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise StoreError(f"cannot use WAL journal mode (got {mode!r})")
    conn.execute("PRAGMA synchronous = FULL")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the pending `MIGRATIONS`, each in one transaction with its ``user_version`` bump.

    The version is re-read inside each write transaction, so two processes opening the same
    file at once do not apply a migration twice.

    Raises:
        StoreError: The file's schema is newer than this code knows, or a migration failed
            (that migration is rolled back; earlier ones stay applied).
    """
    latest = len(MIGRATIONS)
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > latest:
        raise StoreError(
            f"store {path} has schema version {version}, newer than this appliance's {latest}"
        )
    for target in range(version + 1, latest + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            (current,) = conn.execute("PRAGMA user_version").fetchone()
            if current >= target:
                conn.execute("COMMIT")
                continue
            for statement in MIGRATIONS[target - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(target)}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(
                f"cannot migrate store {path} to schema version {target}: {_one_line(exc)}"
            ) from exc
        logger.info("store migrated path=%s version=%d", path, target)
