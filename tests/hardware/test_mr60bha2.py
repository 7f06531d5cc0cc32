"""The MR60BHA2 decoder, aggregator and serial source.

Literal frames below were built by hand from the frame format (hardware/radar/mr60bha2.py):
SOF 01 | ID (2, big endian) | LEN (2) | TYPE (2) | HEAD_CKSUM = ~XOR(first 7 bytes) |
DATA (little-endian values) | DATA_CKSUM = ~XOR(DATA). Worked example, breath rate 15.0/min, id 1:
header 01 00 01 00 04 0A 14, XOR = 0x1A, checksum ~0x1A = 0xE5; data = float32 15.0 =
00 00 70 41, XOR = 0x31, checksum 0xCE.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.errors import RadarUnavailable
from hardware.radar.mr60bha2 import (
    BreathRate,
    Distance,
    HeartRate,
    ModuleSecond,
    Mr60Aggregator,
    Mr60Decoder,
    Mr60Message,
    Mr60Radar,
    Mr60Twin,
    Phases,
    Presence,
    TargetPoint,
    Targets,
    TwinPort,
    checksum,
    encode_frame,
)

# breath rate 15.0 /min, id 1 (the worked example above)
BREATH_15 = bytes.fromhex("01 0001 0004 0A14 E5 00007041 CE")
# heart rate 62.5 /min (float32 0x427A0000), id 2
HEART_62_5 = bytes.fromhex("01 0002 0004 0A15 E7 00007A42 C7")
# distance: flag 1 (uint32), 85.0 cm (float32 0x42AA0000), id 3
DIST_85CM = bytes.fromhex("01 0003 0008 0A16 E9 01000000 0000AA42 16")
# presence: someone (uint16 1), id 4
PRESENT = bytes.fromhex("01 0004 0002 0F09 FE 0100 FE")
# phases: total 1.5, breath -0.25, heart 0.125 (float32 3FC00000, BE800000, 3E000000), id 5
PHASES = bytes.fromhex("01 0005 000C 0A13 EE 0000C03F 000080BE 0000003E 00")
# targets: 1 target, x 0.1 m, y 0.9 m, Doppler -2, cluster 1, id 6
TARGET = bytes.fromhex("01 0006 0014 0A04 E2 01000000 CDCCCC3D 6666663F FEFFFFFF 01000000 57")
# presence: nobody, id 7
ABSENT = bytes.fromhex("01 0007 0002 0F09 FD 0000 FF")

ALL = BREATH_15 + HEART_62_5 + DIST_85CM + PRESENT + PHASES + TARGET + ABSENT
EXPECTED: list[Mr60Message] = [
    BreathRate(15.0),
    HeartRate(62.5),
    Distance(True, 0.85),
    Presence(True),
    Phases(1.5, -0.25, 0.125),
    Targets((TargetPoint(0.1, 0.9, -2, 1),)),  # compared approximately (float32)
    Presence(False),
]


def test_checksum_is_the_inverted_xor() -> None:
    assert checksum(bytes.fromhex("01 0001 0004 0A14")) == 0xE5
    assert checksum(bytes.fromhex("00007041")) == 0xCE
    assert checksum(b"") == 0xFF


def test_literal_frames_decode() -> None:
    d = Mr60Decoder()
    got = d.feed(ALL)
    assert got[:2] == EXPECTED[:2]
    assert isinstance(got[2], Distance) and got[2].valid
    assert got[2].distance_m == pytest.approx(0.85)
    assert got[3:5] == EXPECTED[3:5]
    assert isinstance(got[5], Targets) and len(got[5].targets) == 1
    tp = got[5].targets[0]
    assert (tp.x_m, tp.y_m, tp.doppler_index, tp.cluster_id) == pytest.approx((0.1, 0.9, -2, 1))
    assert got[6] == Presence(False)
    assert d.stats.frames == 7 and d.stats.rejected == 0 and d.stats.garbage_bytes == 0
    assert d.stats.id_jumps == 0  # ids 1..7 follow each other


def test_encode_frame_builds_the_literals() -> None:
    assert encode_frame(0x0A14, struct.pack("<f", 15.0), 1) == BREATH_15
    assert encode_frame(0x0A16, struct.pack("<If", 1, 85.0), 3) == DIST_85CM


def test_byte_by_byte_equals_all_at_once() -> None:
    d = Mr60Decoder()
    got = [m for b in ALL for m in d.feed(bytes([b]))]
    assert got == Mr60Decoder().feed(ALL)


def test_invalid_distance_flag() -> None:
    m = Mr60Decoder().feed(encode_frame(0x0A16, struct.pack("<If", 0, 0.0)))
    assert len(m) == 1 and isinstance(m[0], Distance) and not m[0].valid


def test_bad_checksums_are_rejected_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad_head = bytearray(BREATH_15)
    bad_head[7] ^= 0xFF
    bad_data = bytearray(HEART_62_5)
    bad_data[9] ^= 0x01
    d = Mr60Decoder()
    got = d.feed(bytes(bad_head) + bytes(bad_data) * 3 + DIST_85CM)
    assert len(got) == 1 and isinstance(got[0], Distance)
    assert d.errors.counts["bad header checksum"] >= 1  # also the SOF-like bytes inside it
    assert d.errors.counts["bad data checksum"] == 3
    # Sampled logging: one line per kind so far, not one per error or per byte.
    assert sum("bad data checksum" in m for m in caplog.messages) == 1


def test_unknown_type_wrong_length_and_absurd_values_are_rejected() -> None:
    d = Mr60Decoder()
    frames = (
        encode_frame(0x0A99, b"\x00\x00\x00\x00")  # unknown type
        + encode_frame(0x0A14, b"\x00\x00\x70")  # breath rate with 3 bytes
        + encode_frame(0x0A15, struct.pack("<f", math.nan))  # NaN heart rate
        + encode_frame(0x0A04, struct.pack("<I", 2) + bytes(16))  # says 2 targets, holds 1
        + BREATH_15
    )
    assert d.feed(frames) == [BreathRate(15.0)]
    assert d.errors.counts["unknown type or bad length"] == 2
    assert d.errors.counts["implausible values"] == 2


def test_a_truncated_frame_does_not_swallow_the_next() -> None:
    d = Mr60Decoder()
    # The phases frame loses its last 9 bytes; the next frame's bytes would complete its span.
    got = d.feed(PHASES[:-9] + BREATH_15 + HEART_62_5)
    assert got == [BreathRate(15.0), HeartRate(62.5)]
    assert d.stats.rejected >= 1


def test_garbage_only_is_skipped_and_the_buffer_stays_small() -> None:
    d = Mr60Decoder()
    assert d.feed(b"\x01" * 20000) == []  # worst case: a SOF at every byte
    assert d.feed(bytes(range(256)) * 40) == []
    assert len(d._buf) < 8 + 4 + 16 * 8 + 1
    assert d.stats.garbage_bytes > 25000
    assert d.feed(BREATH_15) == [BreathRate(15.0)]


# ---------------------------------------------------------------------- property-based fuzzing

floats = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=32)
rates = st.floats(min_value=0.0, max_value=250.0, allow_nan=False, width=32)


@st.composite
def valid_frame(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["phase", "breath", "heart", "distance", "presence", "targets"]))
    fid = draw(st.integers(0, 0xFFFF))
    if kind == "phase":
        phases = struct.pack("<3f", draw(floats), draw(floats), draw(floats))
        return encode_frame(0x0A13, phases, fid)
    if kind in ("breath", "heart"):
        rate = struct.pack("<f", draw(rates))
        return encode_frame(0x0A14 if kind == "breath" else 0x0A15, rate, fid)
    if kind == "distance":
        cm = draw(st.floats(min_value=0.0, max_value=900.0, width=32))
        return encode_frame(0x0A16, struct.pack("<If", draw(st.integers(0, 1)), cm), fid)
    if kind == "presence":
        return encode_frame(0x0F09, bytes([draw(st.integers(0, 1)), 0]), fid)
    n = draw(st.integers(0, 3))
    body = struct.pack("<I", n) + b"".join(
        struct.pack("<ffii", draw(floats), draw(floats), draw(st.integers(-100, 100)), k)
        for k in range(n)
    )
    return encode_frame(0x0A04, body, fid)


def feed_in_chunks(d: Mr60Decoder, data: bytes, cuts: list[int]) -> list[Mr60Message]:
    out: list[Mr60Message] = []
    pos = 0
    for c in [*sorted({min(c, len(data)) for c in cuts}), len(data)]:
        out += d.feed(data[pos:c])
        pos = c
    return out


def reference(frames: list[bytes]) -> list[Mr60Message]:
    return Mr60Decoder().feed(b"".join(frames))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000), st.lists(st.integers(0, 4000), max_size=20))
def test_random_bytes_never_raise_and_stay_bounded(data: bytes, cuts: list[int]) -> None:
    d = Mr60Decoder()
    feed_in_chunks(d, data, cuts)
    assert len(d._buf) <= 8 + 4 + 16 * 8 + 1
    assert d.stats.bytes_in == len(data)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=300),
    st.lists(valid_frame(), min_size=1, max_size=12),
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_every_valid_frame_after_garbage_is_decoded(
    garbage: bytes, frames: list[bytes], cuts: list[int]
) -> None:
    d = Mr60Decoder()
    got = feed_in_chunks(d, garbage + b"".join(frames), cuts)
    want = reference(frames)
    assert len(want) == len(frames)
    assert got[len(got) - len(want) :] == want
    # Extra messages could only come from garbage that happens to be a valid frame.
    assert len(got) - len(want) <= garbage.count(b"\x01")
    if garbage and not got[: len(got) - len(want)]:
        assert d.errors.total >= 1 and d.stats.garbage_bytes >= 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            valid_frame(), st.sampled_from(["keep", "flip", "truncate", "garbage"]), st.data()
        ),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_corrupt_and_truncated_frames_cost_only_themselves(
    plan: list[tuple[bytes, str, st.DataObject]], cuts: list[int]
) -> None:
    stream = b""
    kept: list[bytes] = []
    damaged = 0
    for frame, how, data in plan:
        if how == "keep":
            stream += frame
            kept.append(frame)
        elif how == "flip":
            k = data.draw(st.integers(0, len(frame) - 1))
            bit = data.draw(st.integers(0, 7))
            b = bytearray(frame)
            b[k] ^= 1 << bit
            stream += bytes(b)
            damaged += 1
        elif how == "truncate":
            stream += frame[: data.draw(st.integers(1, len(frame) - 1))]
            damaged += 1
        else:  # interleaved noise between frames
            stream += data.draw(st.binary(min_size=1, max_size=40))
            damaged += 1
    d = Mr60Decoder()
    got = feed_in_chunks(d, stream, cuts)
    want = reference(kept)
    # Every intact frame comes out, in order (a damaged one at the very end may still be
    # pending: nothing followed it).
    it = iter(got)
    assert all(any(m == w for m in it) for w in want)
    assert len(got) <= len(want) + stream.count(b"\x01")
    if damaged and len(got) == len(want) and stream != b"".join(kept):
        assert d.errors.total >= 1 or len(d._buf) > 0


# ---------------------------------------------------------------------- aggregation and source


def test_aggregator_emits_one_reading_per_second_and_drops_rates_when_absent() -> None:
    agg = Mr60Aggregator(hold_s=5.0)
    t0 = 1000.0
    out: list[ModuleSecond] = []
    out += agg.update(t0 + 0.1, [Presence(True), BreathRate(14.0), HeartRate(60.0)])
    out += agg.update(t0 + 0.2, [Distance(True, 0.8), Phases(0.0, 0.1, 0.01)])
    out += agg.update(t0 + 0.7, [Phases(0.0, 0.2, 0.02)])
    out += agg.update(t0 + 1.05, [Phases(0.0, 0.3, 0.03)])
    assert len(out) == 1
    s = out[0]
    assert s.t_s == t0 + 1 and s.present is True
    assert (s.breath_rate_bpm, s.heart_rate_bpm, s.distance_m) == (14.0, 60.0, 0.8)
    np.testing.assert_allclose(s.breath_phase, [0.1, 0.2], rtol=1e-6)
    out = agg.update(t0 + 2.5, [Presence(False)])
    assert len(out) == 1 and out[0].breath_phase.shape == (1,)
    out = agg.update(t0 + 3.1, [])
    assert out[0].present is False and out[0].breath_rate_bpm is None
    # A rate reported long ago is not carried forward.
    agg2 = Mr60Aggregator(hold_s=2.0)
    agg2.update(t0, [Presence(True), BreathRate(12.0)])
    later = agg2.update(t0 + 5.0, [])
    assert [x.breath_rate_bpm for x in later] == [12.0, 12.0, None, None, None]


class FakePort:
    """The far end of the UART: replays a byte string in chunks, then goes silent."""

    def __init__(self, data: bytes, chunk: int = 7, fail_after: int | None = None) -> None:
        self.data = data
        self.chunk = chunk
        self.fail_after = fail_after
        self.reads = 0
        self.closed = False

    def read(self, size: int = 1) -> bytes:
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise OSError(5, "Input/output error")
        out, self.data = self.data[: min(size, self.chunk)], self.data[min(size, self.chunk) :]
        return out

    def close(self) -> None:
        self.closed = True


class TickClock:
    def __init__(self, step_s: float) -> None:
        self.t = 2000.0
        self.step_s = step_s

    def now(self) -> float:
        self.t += self.step_s
        return self.t

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - unused
        self.t += seconds


def test_source_reads_seconds_from_the_port() -> None:
    second = PRESENT + BREATH_15 + HEART_62_5 + DIST_85CM + PHASES * 10
    port = FakePort(second * 4)
    clock = TickClock(0.1)  # each port read takes 0.1 s of clock
    src = Mr60Radar(clock, opener=lambda p, b, t: port)
    src.start()
    got = src.read(2)
    assert got is not None and len(got) >= 2
    assert got[0].present is True and got[0].breath_rate_bpm == 15.0
    assert got[0].heart_rate_bpm == 62.5 and got[0].distance_m == pytest.approx(0.85)
    assert all(s.breath_phase.dtype == np.float32 for s in got)
    src.stop()
    assert port.closed and src.read(1) is None


def test_source_reports_a_silent_or_failing_port() -> None:
    src = Mr60Radar(TickClock(1.0), opener=lambda p, b, t: FakePort(b""), silence_s=5.0)
    src.start()
    with pytest.raises(RadarUnavailable, match="no data"):
        src.read(100)
    assert not src.running
    src = Mr60Radar(TickClock(0.1), opener=lambda p, b, t: FakePort(ALL, fail_after=2))
    src.start()
    with pytest.raises(RadarUnavailable, match="read failed"):
        src.read(100)


def test_missing_port_is_a_clear_error() -> None:
    src = Mr60Radar(TickClock(0.1), port="/dev/does-not-exist-mr60")
    with pytest.raises(RadarUnavailable, match="MR60BHA2 on /dev/does-not-exist-mr60"):
        src.start()


# -- the simulated twin -------------------------------------------------------------------------
def _still_twin(**kw: object) -> Mr60Twin:
    n = 30
    z = np.zeros(n)
    rates = np.array([math.nan, 15.0, 15.0])
    return Mr60Twin(
        t0_s=100.0,
        fs_hz=10.0,
        breath_mm=z,
        heart_mm=z,
        total_mm=z,
        breath_rate_bpm=rates,
        heart_rate_bpm=np.array([math.nan, 62.5, 62.5]),
        distance_m=0.85,
        phase_rate_hz=2,
        **kw,  # type: ignore[arg-type]
    )


def test_twin_sends_the_modules_literal_frames() -> None:
    # The literals above, numbered 1-5 in the order the twin sends them (the header checksum
    # follows the id: PRESENT with id 1 is FE ^ (4 ^ 1) = FB).
    second = bytes.fromhex(
        "01 0001 0002 0F09 FB 0100 FE"  # someone
        "01 0002 0004 0A14 E6 00007041 CE"  # breath rate 15.0
        "01 0003 0004 0A15 E6 00007A42 C7"  # heart rate 62.5
        "01 0004 0008 0A16 EE 01000000 0000AA42 16"  # distance valid, 85 cm
        "01 0005 000C 0A13 EE 00000000 00000000 00000000 FF"  # phases 0, 0, 0
    )
    assert _still_twin().stream(101.0, 101.5) == second
    # Before the first rate exists the module sends 0 (no estimate): the aggregator drops it.
    msgs = Mr60Decoder().feed(_still_twin().stream(100.0, 100.5))
    assert BreathRate(0.0) in msgs and HeartRate(0.0) in msgs


def test_twin_says_nobody_when_the_room_is_empty() -> None:
    twin = _still_twin(absent=((101.0, 102.0),))
    msgs = Mr60Decoder().feed(twin.stream(101.0, 102.0))
    assert Presence(False) in msgs
    dist = [m for m in msgs if isinstance(m, Distance)]
    assert dist and not dist[0].valid
    phases = [m for m in msgs if isinstance(m, Phases)]
    assert len(phases) == 2 and all(abs(p.breath) < 0.2 for p in phases)


def test_twin_port_reads_take_clock_time_and_unplugging_fails_like_a_uart() -> None:
    from appliance.clock import VirtualClock

    clock = VirtualClock(100.0)
    port = TwinPort(_still_twin(), clock, step_s=0.5, unplugged=((101.0, 102.0),))
    src = Mr60Radar(clock, opener=port.opener())
    src.start()
    assert port.read(10) and clock.now() == 100.5
    clock.advance_to(101.0)
    with pytest.raises(OSError):
        port.read(256)
    with pytest.raises(RadarUnavailable, match="unplugged"):
        src.start()
    clock.advance_to(102.0)
    src.start()
    assert src.running
