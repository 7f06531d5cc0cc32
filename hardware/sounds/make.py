"""Generate the shipped alarm sounds: `python -m hardware.sounds.make` (deterministic).

Each sound is 16-bit mono PCM at 22.05 kHz, about 2.5 s, peaking at -6 dBFS, with soft attacks
and a faded end so repeats never click:
- chimes: three bell strikes (C6, E6, G6) with inharmonic partials decaying at their own rates;
- birdsong: short rising and falling chirps with a little vibrato, from a seeded generator;
- bowl: a low singing bowl, two close partials beating slowly, swelling in and out.
"""

from __future__ import annotations

import argparse
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE_HZ = 22050
PEAK = 0.5  # -6 dBFS: the volume ramp has room, and small speakers do not distort

Signal = npt.NDArray[np.float64]


def _t(duration_s: float) -> Signal:
    return np.arange(round(duration_s * RATE_HZ)) / RATE_HZ


def _fade(x: Signal, in_s: float = 0.01, out_s: float = 0.15) -> Signal:
    n_in, n_out = round(in_s * RATE_HZ), round(out_s * RATE_HZ)
    env = np.ones_like(x)
    env[:n_in] = np.linspace(0.0, 1.0, n_in)
    env[-n_out:] = np.linspace(1.0, 0.0, n_out)
    return x * env


def _bell(t: Signal, f0_hz: float, start_s: float) -> Signal:
    # Partial ratios and decays of a small bell: the inharmonic ones die first.
    out = np.zeros_like(t)
    tt = t - start_s
    on = tt >= 0
    for ratio, amp, decay_s in (
        (1.0, 1.0, 1.2),
        (2.0, 0.4, 0.6),
        (2.76, 0.25, 0.35),
        (5.4, 0.1, 0.15),
    ):
        attack = np.clip(tt / 0.004, 0.0, 1.0)
        out += (
            on
            * amp
            * attack
            * np.exp(-np.clip(tt, 0, None) / decay_s)
            * np.sin(2 * np.pi * f0_hz * ratio * tt)
        )
    return out


def chimes() -> Signal:
    """Three soft bell strikes, a major triad upwards."""
    t = _t(2.5)
    x = _bell(t, 1046.5, 0.0) + _bell(t, 1318.5, 0.35) + 0.8 * _bell(t, 1568.0, 0.7)
    return _fade(x)


def birdsong() -> Signal:
    """A few chirps: frequency sweeps with vibrato and a raised-cosine envelope."""
    rng = np.random.default_rng(20240607)
    t = _t(2.5)
    x = np.zeros_like(t)
    start = 0.05
    while start < 2.2:
        dur = rng.uniform(0.06, 0.16)
        f_a, f_b = rng.uniform(2800, 4200), rng.uniform(2500, 5000)
        n = round(dur * RATE_HZ)
        i0 = round(start * RATE_HZ)
        tc = np.arange(n) / RATE_HZ
        f = f_a + (f_b - f_a) * tc / dur + 120 * np.sin(2 * np.pi * 35 * tc)
        phase = 2 * np.pi * np.cumsum(f) / RATE_HZ
        env = 0.5 - 0.5 * np.cos(2 * np.pi * tc / dur)
        seg = env * np.sin(phase) * rng.uniform(0.5, 1.0)
        x[i0 : i0 + n] += seg[: len(x) - i0]
        start += dur + rng.choice([0.04, 0.07, 0.25, 0.4])
    return _fade(x)


def bowl() -> Signal:
    """A singing bowl: 220 Hz and 221.5 Hz beating, a soft octave and twelfth, a slow swell."""
    t = _t(2.5)
    swell = np.sin(np.pi * t / t[-1]) ** 1.5
    x = (
        np.sin(2 * np.pi * 220.0 * t)
        + np.sin(2 * np.pi * 221.5 * t)
        + 0.3 * np.sin(2 * np.pi * 440.0 * t)
        + 0.15 * np.sin(2 * np.pi * 661.0 * t)
    )
    return _fade(swell * x, out_s=0.05)


MAKERS = {"chimes": chimes, "birdsong": birdsong, "bowl": bowl}


def write_wav(path: Path, x: Signal) -> None:
    """Normalize `x` to `PEAK` and write it as 16-bit mono PCM at `RATE_HZ`."""
    pcm = np.round(x / np.max(np.abs(x)) * PEAK * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE_HZ)
        w.writeframes(pcm.tobytes())


def main(argv: list[str] | None = None) -> int:
    """Write every sound into `--out` (default: this package's directory)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = ap.parse_args(argv)
    for name, make in MAKERS.items():
        write_wav(args.out / f"{name}.wav", make())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
