"""Power cuts: the running daemon is SIGKILLed at random moments of a simulated night, 20 times.

After each kill the store passes `PRAGMA integrity_check` and holds every epoch it held before;
after each restart the same session resumes (a `session_resumed` event) and nothing stored is
lost; of the epochs the daemon had logged, at most the one in progress is missing.

How the daemon runs: a small server process imports the appliance once and forks one daemon
process per run (importing numpy, scipy and onnxruntime afresh would cost ~5 s a restart, 100 s for
twenty). Each daemon process is built like `appliance run` builds it (the config, the simulated
scene, the stager, the store, `Daemon.run`), on a `ScaledClock` at `SPEED`x real time, with one
difference: every process's clock continues one virtual time line (start = T0 + (wall - wall0) *
SPEED), as a real Pi's clock goes on through a power cut, and the simulated night (rendered once
by the server, 1.7 s) is sought to that time, so the sleeper sleeps on while the daemon is down.
(`appliance run --speed N` starts its virtual clock at the wall clock, so a restarted sped-up run
would find its night in the future.)
It tells us it is up with READY=1 on a notify socket (appliance/notify.py), and is then killed
with SIGKILL after a random 0.2-1.0 s. A SIGKILL is the death of the process, not of the kernel:
what a real power cut adds (the page cache) is the store's `synchronous=FULL` to handle.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KILLS = 20
SPEED = 150.0  # an epoch (30 s) every 0.2 s of real time

_SERVER = r"""
import asyncio, logging, os, sys, time
from pathlib import Path
from zoneinfo import ZoneInfo
from appliance.clock import ScaledClock
from appliance.config import parse_config
from appliance.daemon import Daemon
from appliance.runtime import STORE_FILE, simulated_scene
from appliance.staging import Stager
from appliance.store import Store
from hardware.radar.simulated import SimulatedRadar
from hardware.speaker import SimulatedSpeaker

data_dir, speed, t0, wall0 = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), time.time()
cfg = parse_config({"simulator": {"scene": "asleep-at-once"}, "session": {"start_after_s": 30.0}})
# One night for every process: the sleeper sleeps on while the daemon is down (seek below).
scene, _ = simulated_scene(cfg)
night = SimulatedRadar(scene, cfg.radar, start_s=t0, seed=0)


def daemon_process(log_path):
    logging.basicConfig(level=logging.INFO, stream=open(log_path, "w"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stager = Stager()
    clock = ScaledClock(t0 + (time.time() - wall0) * speed, speed)
    radar = night
    radar.seek(clock.now())
    store = Store.open(data_dir / STORE_FILE)
    d = Daemon(cfg, clock=clock, radar=radar, speaker=SimulatedSpeaker(clock), store=store,
               stager=stager, tz=ZoneInfo("UTC"))
    asyncio.run(d.run())


for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd != "start":
        break
    pid = os.fork()
    if pid == 0:
        try:
            daemon_process(arg)
        finally:
            os._exit(0)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(f"exited {status}", flush=True)
"""

_EPOCH = re.compile(r"appliance\.daemon: epoch (\d+) stage=(\w+)")


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _snapshot(db: Path) -> tuple[list[int], dict[int, set[int]], int]:
    """(session ids, session id -> stored epoch indices, number of session_resumed events)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sids = [r[0] for r in conn.execute("SELECT id FROM sessions ORDER BY id")]
        eps: dict[int, set[int]] = {s: set() for s in sids}
        for sid, idx in conn.execute("SELECT session_id, idx FROM epochs"):
            eps[sid].add(idx)
        (resumed,) = conn.execute(
            "SELECT count(*) FROM events WHERE kind = 'session_resumed'"
        ).fetchone()
        return sids, eps, int(resumed)
    finally:
        conn.close()


def _recv(sock: socket.socket, timeout_s: float) -> str | None:
    sock.settimeout(timeout_s)
    try:
        return sock.recv(4096).decode()
    except TimeoutError:
        return None


def _wait_ready(sock: socket.socket, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        msg = _recv(sock, left)
        if msg is not None and msg.startswith("READY=1"):
            return
    pytest.fail("the daemon did not become ready")


@pytest.fixture
def tmp() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pcut-", dir="/tmp"))  # short: an AF_UNIX path
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_twenty_power_cuts_in_one_night(tmp: Path) -> None:
    db = tmp / "data" / "appliance.sqlite"
    db.parent.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp / "notify"))
    env = dict(
        os.environ,
        NOTIFY_SOCKET=str(tmp / "notify"),
        OPENBLAS_NUM_THREADS="1",  # no BLAS threads in the server: it forks
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("WATCHDOG_USEC", None)
    t0 = 1_800_000_000.0  # a fixed night keeps the epoch grid the same from run to run
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(db.parent), str(SPEED), str(t0)],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    rng = random.Random(11)
    session_id: int | None = None
    pid: int | None = None
    stored: set[int] = set()
    resumed = 0
    try:
        for run in range(KILLS + 1):
            log_path = tmp / f"run{run}.log"
            server.stdin.write(f"start {log_path}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            _wait_ready(sock, 60.0)

            if session_id is not None:
                # The restart resumed the night: the same session, one more session_resumed.
                sids, eps, n_resumed = _snapshot(db)
                assert sids == [session_id], "a second night started instead of a resume"
                assert n_resumed == resumed + 1
                resumed = n_resumed
                assert stored <= eps[session_id], "epochs stored before the kill are gone"

            if run == KILLS:
                os.kill(pid, signal.SIGTERM)  # the morning: a clean stop
                assert server.stdout.readline().strip() == "exited 0"
                pid = None
                break
            if session_id is None:
                # The first run: let the night begin (presence, then start_after_s), then cut.
                deadline = time.monotonic() + 60.0
                while time.monotonic() < deadline:
                    sids, eps, _ = _snapshot(db) if db.exists() else ([], {}, 0)
                    if sids and len(eps[sids[0]]) >= 2:
                        break
                    time.sleep(0.05)
            time.sleep(rng.uniform(0.2, 1.0))
            os.kill(pid, signal.SIGKILL)  # the power cut
            assert server.stdout.readline().strip() == f"exited {signal.SIGKILL}"

            assert _integrity(db) == "ok"
            sids, eps, _ = _snapshot(db)
            assert len(sids) == 1
            if session_id is None:
                session_id = sids[0]
            assert stored <= eps[session_id]
            # Every epoch of this run it logged in the session is stored, but the one in progress.
            text = log_path.read_text(encoding="utf-8")
            if run == 0:
                text = text.split(f"session {session_id} started", 1)[1]
            logged = [(int(i), s) for i, s in _EPOCH.findall(text)]
            must = {i for i, s in logged[:-1] if s != "absent"}
            assert must <= eps[session_id], sorted(must - eps[session_id])
            stored = eps[session_id]
            assert "Traceback" not in text
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if server.poll() is None:
            server.stdin.close()
            try:
                server.wait(timeout=30.0)
            except subprocess.TimeoutExpired:
                server.kill()
        sock.close()

    # One night across twenty cuts, on one epoch grid, no epoch twice, all still there.
    sids, eps, n_resumed = _snapshot(db)
    assert sids == [session_id] and n_resumed == KILLS
    assert len(eps[session_id]) >= KILLS  # the night went on between the cuts
    conn = sqlite3.connect(db)
    try:
        idx = [r[0] for r in conn.execute("SELECT idx FROM epochs ORDER BY t_s")]
        (open_,) = conn.execute("SELECT count(*) FROM sessions WHERE ended_s IS NULL").fetchone()
    finally:
        conn.close()
    assert idx == sorted(set(idx))
    assert open_ == 1  # stopped, not ended: the night resumes at the next start
    assert _integrity(db) == "ok"
