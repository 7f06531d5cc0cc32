"""The `appliance` command: run, simulate, report, config check.

Every failure a user can cause (a bad config, a missing file, an unusable store) ends with one line
on stderr and exit code 2; never a traceback (`-v` shows one for an internal error).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from appliance import __version__
from appliance.errors import ApplianceError

__all__ = ["main"]

log = logging.getLogger("appliance")

EXIT_USAGE = 2


def _default_data_dir() -> Path:
    """The state directory: $STATE_DIRECTORY (systemd), /var/lib/appliance as root, else XDG."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/appliance")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "appliance"


def _setup_logging(level: str, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="appliance",
        description="Local-first bedside sleep appliance: radar sleep staging and a smart alarm.",
    )
    p.add_argument("--version", action="version", version=f"appliance {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run the daemon (simulated hardware off the Pi)")
    r.add_argument("--config", type=Path, help="config file (default /etc/appliance/config.toml)")
    r.add_argument("--data-dir", type=Path, help="directory of the SQLite store")
    r.add_argument("--scene", help="simulated scene (simulated radar only)")
    r.add_argument("--night", type=Path, help="recorded night driving the simulated sleeper")
    r.add_argument("--speed", type=float, help="virtual clock speed over real time (default 1)")

    s = sub.add_parser("simulate", help="simulate one whole night in virtual time and report it")
    s.add_argument("--night", type=Path, help="recorded night (.npz, ../shared/data format)")
    s.add_argument("--partner", type=Path, help="recorded night driving the partner")
    s.add_argument(
        "--scene", default="reading-then-sleep", help="scene (default reading-then-sleep)"
    )
    s.add_argument("--alarm", default="", metavar="HH:MM", help="local alarm time")
    s.add_argument("--db", type=Path, help="SQLite store to write (default: a temporary file)")
    s.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    s.add_argument("--seed", type=int, help="scene seed (default: the config's, 0)")
    s.add_argument("--config", type=Path, help="config file (default: built-in defaults)")
    s.add_argument("--list-scenes", action="store_true", help="list the scenes and exit")

    rec = sub.add_parser("record", help="record radar frames to a file (the replay format)")
    rec.add_argument("--out", type=Path, required=True, help="the .npz recording to write")
    rec.add_argument("--duration-s", type=float, default=600.0, help="seconds to record (600)")
    rec.add_argument("--scene", help="simulated scene (default: the config's)")
    rec.add_argument("--night", type=Path, help="recorded night driving the simulated sleeper")
    rec.add_argument("--seed", type=int, help="scene seed")
    rec.add_argument("--config", type=Path, help="config file")

    rp = sub.add_parser("replay", help="run the live pipeline on a radar recording")
    rp.add_argument("recording", type=Path, help="a .npz recording (see `record`)")
    rp.add_argument("--json", type=Path, metavar="OUT", help="write the epochs as JSON")
    rp.add_argument("--config", type=Path, help="config file")

    rep = sub.add_parser("report", help="print a night's morning report from the store")
    rep.add_argument("--night", metavar="DATE", help="YYYY-MM-DD the night began (default: last)")
    rep.add_argument("--json", action="store_true", help="print JSON instead of text")
    rep.add_argument("--config", type=Path, help="config file")
    rep.add_argument("--data-dir", type=Path, help="directory of the SQLite store")
    rep.add_argument("--db", type=Path, help="the SQLite file itself")

    ev = sub.add_parser(
        "eval", help="score PSG nights with the shipped model and print the agreement figures"
    )
    ev.add_argument("--data", type=Path, required=True, help="a folder of nights (*.npz)")
    ev.add_argument(
        "--via-radar", action="store_true", help="render each night through the radar chain"
    )
    ev.add_argument("--model", default="live", choices=("live", "morning"), help="which model")
    ev.add_argument("--classes", type=int, default=4, choices=(4, 3), help="4 or 3 classes")
    ev.add_argument("--jobs", type=int, default=1, help="nights scored in parallel")
    ev.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")

    cal = sub.add_parser(
        "calibrate", help="measure the bed's distances from a minute of the user lying still"
    )
    cal.add_argument("--config", type=Path, help="config file (default /etc/appliance/config.toml)")
    cal.add_argument("--write", type=Path, help="append the measured [bed] table to this file")
    cal.add_argument("--seed", type=int, default=0, help="noise seed of the simulated radar")

    c = sub.add_parser("config", help="configuration tools")
    c.set_defaults(print_config_help=c.print_help)
    csub = c.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    chk = csub.add_parser("check", help="validate a config file and print the effective config")
    chk.add_argument(
        "path", nargs="?", type=Path, help="config file (default /etc/appliance/config.toml)"
    )
    return p


# -- commands ------------------------------------------------------------------------------------
def _cmd_config_check(args: argparse.Namespace) -> int:
    from appliance.config import DEFAULT_CONFIG_PATH, load_config
    from appliance.runtime import check_simulator

    cfg = load_config(args.path)
    check_simulator(cfg)
    src = args.path or DEFAULT_CONFIG_PATH
    print(f"# {src}: valid" + ("" if src.exists() else " (file absent: defaults)"))
    print(_to_toml(cfg.model_dump()))
    return 0


def _to_toml(d: dict[str, object], prefix: str = "") -> str:
    """Render the effective config as TOML (flat tables; values are str/num/bool only)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, object]]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((f"{prefix}{k}", v))
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    for name, t in tables:
        lines.append(f"\n[{name}]")
        lines.append(_to_toml(t, prefix=f"{name}."))
    return "\n".join(lines).strip("\n")


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from appliance.calibrate import measure_frames, simulated_minute
    from appliance.config import load_config
    from appliance.errors import ConfigError

    cfg = load_config(args.config)
    if cfg.radar.type != "simulated":
        raise ConfigError("radar.type", "calibration needs a radar driver (simulated only here)")
    print("lie still on your side of the bed for a minute...", file=sys.stderr)
    m = measure_frames(simulated_minute(cfg, args.seed))
    text = m.to_toml()
    if args.write is not None:
        old = args.write.read_text() if args.write.exists() else ""
        if any(line.strip() == "[bed]" for line in old.splitlines()):
            raise ConfigError("bed", f"{args.write} already has a [bed] table: edit it by hand")
        args.write.write_text(old + ("\n" if old and not old.endswith("\n") else "") + text)
    print(text, end="")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from appliance.runtime import run_daemon

    return run_daemon(
        config_path=args.config,
        data_dir=args.data_dir or None,
        default_data_dir=_default_data_dir(),
        scene=args.scene,
        night=args.night,
        speed=args.speed,
        verbose=args.verbose,
    )


def _cmd_simulate(args: argparse.Namespace) -> int:
    from appliance.config import Config, load_config
    from appliance.simulation import SCENE_NAMES, simulate_night

    if args.list_scenes:
        print("\n".join(SCENE_NAMES))
        return 0
    cfg = load_config(args.config) if args.config else Config()
    result = simulate_night(
        cfg,
        night=args.night,
        partner=args.partner,
        scene=args.scene,
        alarm=args.alarm,
        db=args.db,
        seed=args.seed,
    )
    print(result.text)
    if args.json:
        try:
            args.json.write_text(json.dumps(result.data, indent=1) + "\n", encoding="utf-8")
        except OSError as e:
            raise ApplianceError(f"cannot write {args.json}: {e.strerror or e}") from None
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    import time

    from appliance.config import load_config
    from appliance.runtime import simulated_scene, with_overrides
    from hardware.radar.replay import record
    from hardware.radar.simulated import SimulatedRadar

    if args.duration_s <= 0:
        raise ApplianceError("--duration-s must be > 0")
    cfg = with_overrides(
        load_config(args.config), scene=args.scene, night=args.night, seed=args.seed
    )
    scene, sleeper = simulated_scene(cfg)
    sim = cfg.simulator
    radar = SimulatedRadar(scene, cfg.radar, start_s=time.time(), seed=sim.seed)
    meta = {"scene": sim.scene, "night": sleeper.record, "seed": sim.seed, "version": __version__}
    n = record(radar, args.out, radar="simulated A121", meta=meta, max_s=args.duration_s)
    print(f"recorded {n} frames ({n / cfg.radar.frame_rate_hz:.0f} s) to {args.out}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from appliance.config import Config, load_config
    from appliance.replay import replay_recording

    cfg = load_config(args.config) if args.config else Config()
    out = replay_recording(cfg, args.recording)
    eps = out["epochs"]
    print(
        f"{args.recording}: {out['frames']} frames, {len(eps)} epochs in {out['wall_s']:.1f} s; "
        f"stages: "
        + " ".join(
            f"{k}={sum(e['stage'] == k for e in eps)}"
            for k in ("wake", "light", "deep", "rem", "absent")
        )
    )
    if args.json:
        try:
            args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        except OSError as e:
            raise ApplianceError(f"cannot write {args.json}: {e.strerror or e}") from None
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from appliance.evaluate import evaluate
    from appliance.report import format_eval

    out = evaluate(
        args.data,
        via_radar=args.via_radar,
        model=args.model,
        classes=args.classes,
        jobs=max(1, args.jobs),
    )
    print(format_eval(out))
    if args.json:
        try:
            args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        except OSError as e:
            raise ApplianceError(f"cannot write {args.json}: {e.strerror or e}") from None
    return 0


def _night_of(t_s: float, tz_key: str) -> date:
    """The date a night is named by: its evening (a start before noon belongs to the day before)."""
    from appliance.clock import local_datetime

    dt = local_datetime(t_s, tz_key)
    return (dt - timedelta(hours=12)).date()


def _cmd_report(args: argparse.Namespace) -> int:
    from appliance.config import load_config
    from appliance.report_data import night_report
    from appliance.store import Store

    cfg = load_config(args.config)
    db = (
        args.db
        or (args.data_dir or Path(cfg.store.data_dir or _default_data_dir())) / "appliance.sqlite"
    )
    if not db.exists():
        raise ApplianceError(f"no store at {db} (has the daemon run yet? use --db or --data-dir)")
    with Store.open(db) as store:
        rows = [s for s in store.sessions(limit=1000) if not s.is_open and s.summary]
        if args.night:
            try:
                want = datetime.strptime(args.night, "%Y-%m-%d").date()
            except ValueError:
                raise ApplianceError(f"--night: expected YYYY-MM-DD, got {args.night!r}") from None
            rows = [s for s in rows if _night_of(s.started_s, s.tz) == want]
        if not rows:
            raise ApplianceError(
                "no finished night in the store" + (f" for {args.night}" if args.night else "")
            )
        text, data = night_report(store, rows[0])
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `appliance` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging("INFO" if args.command == "run" else "WARNING", args.verbose)
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "simulate":
            return _cmd_simulate(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "record":
            return _cmd_record(args)
        if args.command == "replay":
            return _cmd_replay(args)
        if args.command == "eval":
            return _cmd_eval(args)
        if args.command == "calibrate":
            return _cmd_calibrate(args)
        if args.command == "config":
            if args.config_command == "check":
                return _cmd_config_check(args)
            args.print_config_help()
            return EXIT_USAGE
        parser.print_help()
        return EXIT_USAGE
    except ApplianceError as e:
        print(f"appliance: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `appliance report | head`: the reader left; that is not an error of ours.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug: one line, and the traceback with -v
        if args.verbose:
            raise
        print(
            f"appliance: internal error: {e.__class__.__name__}: {e} (run with -v for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
