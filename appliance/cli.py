"""The `appliance` command: run, simulate, report, config check, and the daemon's clients.

Every failure a user can cause (a bad config, a missing file, an unusable store) ends with one line
on stderr and exit code 2; never a traceback (`-v` shows one for an internal error). The clients of
the running daemon (`status`, `standby`, `light`, `dismiss`, `snooze`) exit with code 3 when the
daemon is not running, and 2 when it refuses the command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo as ZoneInfoT

from appliance import __version__
from appliance.api_client import DaemonNotRunning
from appliance.errors import ApplianceError

if TYPE_CHECKING:
    from appliance.config import Config

__all__ = ["main"]

log = logging.getLogger("appliance")

EXIT_USAGE = 2
EXIT_NO_DAEMON = 3


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
    rep.add_argument(
        "--png", type=Path, metavar="FILE", help="also draw the night as a PNG (extra 'report')"
    )

    api = argparse.ArgumentParser(add_help=False)
    api.add_argument("--socket", type=Path, help="the daemon's API socket (default: [api])")
    api.add_argument("--config", type=Path, help="config file (for [api] socket_path)")
    st = sub.add_parser("status", parents=[api], help="what the daemon sees and does now")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    sb = sub.add_parser("standby", parents=[api], help="radar off at the source (on) or back (off)")
    sb.add_argument("state", choices=("on", "off"))
    li = sub.add_parser("light", parents=[api], help="the bedside light")
    li.add_argument("mode", choices=("off", "reading", "night"))
    li.add_argument("--brightness", type=float, metavar="0-1", help="brightness (default: mode's)")
    sub.add_parser("dismiss", parents=[api], help="stop the ringing alarm")
    sub.add_parser("snooze", parents=[api], help="snooze the ringing alarm")
    sub.add_parser("tui", parents=[api], help="the full-screen terminal interface")

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
    ev.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write a hypnogram pair per night and a Bland-Altman plot per metric (PNG) here",
    )
    _alarm_parser(sub)

    cal = sub.add_parser(
        "calibrate", help="measure the bed's distances from a minute of the user lying still"
    )
    cal.add_argument("--config", type=Path, help="config file (default /etc/appliance/config.toml)")
    cal.add_argument("--write", type=Path, help="append the measured [bed] table to this file")
    cal.add_argument("--seed", type=int, default=0, help="noise seed of the simulated radar")

    c = sub.add_parser("config", help="configuration tools")
    c.set_defaults(print_config_help=c.print_help)
    csub = c.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    csub.add_parser("default", help="print the documented default config (every key)")
    chk = csub.add_parser("check", help="validate a config file and print the effective config")
    chk.add_argument(
        "path", nargs="?", type=Path, help="config file (default /etc/appliance/config.toml)"
    )
    return p


def _alarm_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `alarm` command group (works on the store; the running daemon re-reads it in 30 s)."""
    a = sub.add_parser("alarm", help="set, list, skip, turn off/on, delete alarms; the backstop")
    a.set_defaults(print_alarm_help=a.print_help)
    asub = a.add_subparsers(dest="alarm_command", metavar="SUBCOMMAND")

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, help="config file")
        p.add_argument("--data-dir", type=Path, help="directory of the SQLite store")
        p.add_argument("--db", type=Path, help="the SQLite file itself")
        return p

    st = common(asub.add_parser("set", help="add an alarm, or change one with --id"))
    st.add_argument("time", metavar="HH:MM", help="local wall-clock time")
    st.add_argument(
        "--days",
        default="daily",
        help="once | daily | weekdays | weekends | mon-fri | mon,wed,... (default daily)",
    )
    st.add_argument("--window", type=float, metavar="MIN", help="smart window, 0-45 min (30)")
    st.add_argument("--id", type=int, help="change this alarm instead of adding one")
    st.add_argument(
        "--sound", help="chimes | birdsong | bowl (default: the config's [speaker] sound)"
    )
    ls = common(asub.add_parser("list", help="list the alarms and when each rings next"))
    ls.add_argument("--json", action="store_true", help="print JSON")
    sk = common(asub.add_parser("skip", help="skip the next occurrence (default: the next ring)"))
    sk.add_argument("id", type=int, nargs="?", help="alarm id")
    for name, what in (("off", "turn off"), ("on", "turn on (and un-skip)")):
        p = common(asub.add_parser(name, help=f"{what} an alarm (default: every alarm)"))
        p.add_argument("id", type=int, nargs="?", help="alarm id")
    dl = common(asub.add_parser("delete", help="delete an alarm"))
    dl.add_argument("id", type=int, help="alarm id")
    common(asub.add_parser("backstop", help="ring a due alarm if the daemon is down (timer)"))


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
    from appliance.runtime import check_recordable, simulated_scene, with_overrides
    from hardware.radar.replay import record
    from hardware.radar.simulated import SimulatedRadar

    if args.duration_s <= 0:
        raise ApplianceError("--duration-s must be > 0")
    cfg = with_overrides(
        load_config(args.config), scene=args.scene, night=args.night, seed=args.seed
    )
    check_recordable(cfg)
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
        plots=args.plots,
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
        if args.png:
            from appliance.report_png import write_png

            row = rows[0]
            env = store.environment(row.started_s, (row.ended_s or row.started_s) + 1.0)
            write_png(data, env, args.png, tz=row.tz or "UTC")
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(text)
    return 0


def _alarm_db(args: argparse.Namespace, cfg_data_dir: str) -> Path:
    if args.db:
        return Path(args.db)
    return (args.data_dir or Path(cfg_data_dir or _default_data_dir())) / "appliance.sqlite"


def _cmd_alarm(args: argparse.Namespace) -> int:
    import time

    from appliance import alarm_schedule as sched
    from appliance.config import load_config, resolve_timezone
    from appliance.store import Store

    cmd = args.alarm_command
    if cmd is None:
        args.print_alarm_help()
        return EXIT_USAGE
    cfg = load_config(args.config)
    tz = resolve_timezone(cfg)
    db = _alarm_db(args, cfg.store.data_dir)
    if cmd == "backstop":
        return _cmd_alarm_backstop(cfg, tz, db)
    now = time.time()
    with Store.open(db) as store:
        if cmd == "set":
            a = sched.set_alarm(
                store,
                now,
                args.time,
                days=args.days,
                window_min=args.window,
                alarm_id=args.id,
                sound=args.sound,
            )
            t = sched.occurrence(a, tz, now)
            print(f"alarm {a.id}: {a.time} {sched.days_label(a.days)}, next {_when(t, tz)}")
        elif cmd == "list":
            rows = sched.describe_store(store, tz, now)
            if args.json:
                print(json.dumps(rows, indent=1))
            else:
                print(_alarm_table(rows))
        elif cmd == "skip":
            a, t = sched.skip_next(store, tz, now, args.id)
            print(f"alarm {a.id}: skipping {_when(t, tz)}")
        elif cmd in ("off", "on"):
            changed = sched.set_enabled(store, args.id, cmd == "on")
            print(f"alarm {', '.join(str(a.id) for a in changed) or '(none)'}: {cmd}")
        elif cmd == "delete":
            sched.delete_alarm(store, args.id)
            print(f"alarm {args.id}: deleted")
    return 0


def _when(t_s: float | None, tz: ZoneInfoT) -> str:
    from appliance.clock import local_datetime

    if t_s is None:
        return "never (off or spent)"
    return local_datetime(t_s, tz).strftime("%a %Y-%m-%d %H:%M %Z")


def _alarm_table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "no alarms (appliance alarm set HH:MM)"
    lines = [f"{'id':>3}  {'time':5}  {'days':14}  {'on':3}  {'window':6}  {'sound':8}  next ring"]
    for r in rows:
        nxt = str(r["next_ring"] or "-")
        if r["skip_next"]:
            nxt += f" (skipping {r['skip_next']})"
        lines.append(
            f"{r['id']!s:>3}  {r['time']!s:5}  {r['days']!s:14}  "
            f"{'on' if r['enabled'] else 'off':3}  {r['window_min']!s:>6}  "
            f"{r['sound'] or 'default'!s:8}  {nxt}"
        )
    return "\n".join(lines)


def _cmd_alarm_backstop(cfg: Config, tz: ZoneInfoT, db: Path) -> int:
    import time

    from appliance.backstop import backstop, default_speaker
    from appliance.errors import StoreError
    from appliance.store import Store

    logging.getLogger().setLevel(logging.INFO)
    store: Store | None
    try:
        store = Store.open(db)
    except StoreError as e:
        log.error("backstop: %s", e)
        store = None
    try:
        res = backstop(store, cfg.alarm, tz, default_speaker(cfg), now=time.time, sleep=time.sleep)
    finally:
        if store is not None:
            store.close()
    log.info("backstop: %s", res.action)
    return 0


def _socket(args: argparse.Namespace) -> Path:
    from appliance.api_client import find_socket
    from appliance.config import load_config

    if args.socket:
        return Path(args.socket)
    cfg = load_config(args.config)
    return find_socket(cfg.api.socket_path or None)


def _call(args: argparse.Namespace, method: str, **params: object) -> Any:
    from appliance.api_client import Client

    with Client(_socket(args)) as c:
        return c.call(method, **params)


def _fmt(v: object, unit: str = "", digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}{unit}"
    return f"{v}{unit}"


def format_status(st: dict[str, Any]) -> str:
    """The status as a few lines for the terminal."""
    env = st.get("environment") or {}
    sess = st.get("session") or {}
    presence = st.get("presence")
    lines = [
        f"presence     {'-' if presence is None else ('yes' if presence else 'no')}"
        + (f" ({st['presence_state']})" if st.get("presence_state") else ""),
        f"session      {sess.get('state', '-')}"
        + (f" (#{sess['id']})" if sess.get("id") is not None else ""),
        f"stage        {st.get('stage') or '-'}",
        f"breath rate  {_fmt(st.get('breath_rate'), '/min')}",
        f"heart rate   {_fmt(st.get('heart_rate'), '/min', 0)}",
        "bedroom      "
        + (
            f"{_fmt(env.get('temperature_c'), ' °C')}, {_fmt(env.get('humidity_pct'), ' %', 0)}"
            f", {_fmt(env.get('illuminance_lux'), ' lx')}"
            if any(v is not None for v in env.values())
            else "no readings"
        ),
        f"next alarm   {st.get('next_alarm') or 'none'}",
        f"standby      {'on' if st.get('standby') else 'off'}",
        "devices      "
        + ", ".join(
            f"{name} {d.get('status', '?')}"
            for name, d in sorted((st.get("devices") or {}).items())
        ),
    ]
    return "\n".join(lines)


def _cmd_status(args: argparse.Namespace) -> int:
    st = _call(args, "status")
    print(json.dumps(st, indent=1) if args.json else format_status(st))
    return 0


def _cmd_standby(args: argparse.Namespace) -> int:
    out = _call(args, "set_standby", on=args.state == "on")
    print(f"standby {'on' if out.get('standby') else 'off'}")
    return 0


def _cmd_light(args: argparse.Namespace) -> int:
    params: dict[str, object] = {"mode": args.mode}
    if args.brightness is not None:
        params["brightness"] = args.brightness
    _call(args, "set_light", **params)
    print(f"light {args.mode}")
    return 0


def _cmd_simple(args: argparse.Namespace) -> int:
    _call(args, args.command)
    print({"dismiss": "alarm dismissed", "snooze": "alarm snoozed"}[args.command])
    return 0


def _cmd_tui(args: argparse.Namespace) -> int:
    from appliance.tui.app import ApplianceApp

    ApplianceApp(socket_path=_socket(args)).run()
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _cmd_run,
    "simulate": _cmd_simulate,
    "report": _cmd_report,
    "record": _cmd_record,
    "replay": _cmd_replay,
    "eval": _cmd_eval,
    "alarm": _cmd_alarm,
    "status": _cmd_status,
    "standby": _cmd_standby,
    "light": _cmd_light,
    "dismiss": _cmd_simple,
    "snooze": _cmd_simple,
    "tui": _cmd_tui,
    "calibrate": _cmd_calibrate,
}
"""Each subcommand's function (`config` has subcommands of its own)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `appliance` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging("INFO" if args.command == "run" else "WARNING", args.verbose)
    try:
        command = _COMMANDS.get(args.command)
        if command is not None:
            return command(args)
        if args.command == "config":
            if args.config_command == "check":
                return _cmd_config_check(args)
            if args.config_command == "default":
                from appliance.config import default_toml

                print(default_toml(), end="")
                return 0
            args.print_config_help()
            return EXIT_USAGE
        parser.print_help()
        return EXIT_USAGE
    except DaemonNotRunning as e:
        print(f"appliance: {e}", file=sys.stderr)
        return EXIT_NO_DAEMON
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
