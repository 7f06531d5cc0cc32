import dataclasses

import synthetic

from appliance.config import PresenceConfig
from appliance.dsp import RadarDsp
from appliance.frames import RadarSecond, Target
from appliance.presence import PresenceDetector


def _states(fr, cfg=None):
    det = PresenceDetector(cfg)
    return [det.update(s) for s in RadarDsp().update(fr)]


def test_still_sleeper_is_present_after_warm_up():
    out = _states(synthetic.frames(120.0, people=((0.8, 12.0, 4.0, 58.0),)))
    t0 = out[0].t_s
    assert all(s.present and s.state == "still" for s in out if s.t_s - t0 > 40)
    assert all(0.0 <= s.confidence <= 1.0 for s in out)


def test_empty_room_never_present():
    out = _states(synthetic.frames(180.0, people=()))
    assert not any(s.present for s in out)
    assert all(s.state == "empty" for s in out)


def test_leaving_is_detected_within_a_minute_and_entering_quickly():
    fr = synthetic.frames(300.0, absent=((0.0, 60.0), (150.0, 300.0)), moving=((60.0, 62.0),))
    out = _states(fr)
    t0 = out[0].t_s
    entered = min(s.t_s - t0 for s in out if s.present)
    assert 60.0 <= entered <= 60.0 + 10.0  # the walk-in movement
    left = [s.t_s - t0 for s in out if s.t_s - t0 > 150 and not s.present]
    assert left and left[0] <= 150.0 + 90.0


def _sec(t, snr, q, br=15.0):
    return RadarSecond(
        t_s=t,
        targets=(
            Target(
                0.7,
                snr,
                2.0,
                br,
                62.0,
                0.5,
                q,
                breath_interval_cv=0.06,
                breath_amp_cv=0.1,
                breath_amp_mm=6.0,
                breath_ti_ratio=0.4,
                recent_resp_mm=2.0,
            ),
        ),
        noise_floor_db=-40.0,
    )


def test_presence_holds_through_a_dropout():
    det = PresenceDetector(PresenceConfig(hold_s=60.0))
    out = [det.update(_sec(float(t), 25.0, 0.95)) for t in range(60)]
    out += [
        det.update(RadarSecond(t_s=float(t), targets=(), noise_floor_db=-40.0))
        for t in range(60, 100)
    ]
    assert out[59].present
    assert all(s.present for s in out[60:100])  # a 40-s central apnea does not drop the sleeper
    out += [
        det.update(RadarSecond(t_s=float(t), targets=(), noise_floor_db=-40.0))
        for t in range(100, 200)
    ]
    assert not out[-1].present


def _breather(t, *, ti=0.4, cvi=0.06, cva=0.1, q=0.95):
    tgt = Target(
        0.7,
        25.0,
        2.0,
        14.0,
        62.0,
        0.5,
        q,
        breath_interval_cv=cvi,
        breath_amp_cv=cva,
        breath_amp_mm=6.0,
        breath_ti_ratio=ti,
        recent_resp_mm=2.0,
    )
    return RadarSecond(t_s=float(t), targets=(tgt,), noise_floor_db=-40.0)


def test_a_confirmed_breather_is_kept_through_irregular_symmetric_breathing():
    det = PresenceDetector()
    out = [det.update(_breather(t)) for t in range(90)]
    assert out[-1].present
    # REM-like: irregular, symmetric breaths at a lower periodicity for 5 minutes.
    out = [det.update(_breather(t, ti=0.5, cvi=0.3, cva=0.5, q=0.5)) for t in range(90, 390)]
    assert all(s.present for s in out)


def test_the_same_breathing_never_makes_an_empty_room_present():
    det = PresenceDetector()
    out = [det.update(_breather(t, ti=0.5, cvi=0.3, cva=0.5, q=0.5)) for t in range(300)]
    assert not any(s.present for s in out)


def test_breathing_without_three_breaths_is_no_evidence():
    # A window too short (or too irregular) for three complete breaths has NaN variabilities:
    # a steadiness never measured must not count as steady (a swinging curtain in the first
    # 15–20 s of a fresh pipeline looks periodic and chest-sized).
    det = PresenceDetector()
    out = [det.update(_breather(t, cvi=float("nan"), cva=float("nan"), q=0.95)) for t in range(120)]
    assert not any(s.present for s in out)


def test_leaving_ends_a_confirmed_breather_within_a_minute():
    det = PresenceDetector(PresenceConfig(hold_s=40.0))
    out = [det.update(_breather(t)) for t in range(60)]
    assert out[-1].present
    # The sleeper leaves: nothing breathes at 0.7 m any more; presence ends within a minute.
    gone = [
        det.update(RadarSecond(t_s=float(t), targets=(), noise_floor_db=-40.0))
        for t in range(60, 130)
    ]
    assert not gone[-1].present
    assert next(s.t_s for s in gone if not s.present) <= 60.0 + 60.0


def test_one_breathing_second_after_a_gap_is_one_second_of_evidence():
    # After an outage or a clock step, a single clear-breathing second must not count as the
    # whole gap's worth of breathing (it would confirm a reflector at once).
    det = PresenceDetector()
    assert not any(det.update(RadarSecond(float(t), (), -40.0)).present for t in range(200))
    after = det.update(_breather(800))
    assert not after.present and after.confidence < 0.2


def test_a_restarted_chain_confirms_the_user_where_they_were_breathing():
    # Irregular (apnoeic) but plausible breathing that only becomes measurable after the start
    # window is never confirmed from scratch: only clear breathing counts then. Where the user
    # was seen minutes before a restart, plausible breathing is enough.
    def night(det):
        quiet = [det.update(RadarSecond(float(t), (), -40.0)) for t in range(100)]
        return quiet + [
            det.update(_breather(t, ti=0.4, cvi=0.2, cva=0.3, q=0.7)) for t in range(100, 400)
        ]

    assert not any(s.present for s in night(PresenceDetector()))
    det = PresenceDetector()
    det.expect(0.7, 1800.0)
    out = night(det)
    first = next(i for i, s in enumerate(out) if s.present)
    assert 100 <= first <= 160 and all(s.present for s in out[first:])
    elsewhere = PresenceDetector()
    elsewhere.expect(1.6, 1800.0)  # another distance: no help
    assert not any(s.present for s in night(elsewhere))


def test_somebody_who_just_lay_down_is_kept_while_their_breathing_is_confirmed():
    # Getting into bed (a body movement at a new distance) makes them present at once; their
    # first minutes of breathing may be too irregular for any confirming count, yet periodic
    # and chest-sized: they are kept on that weak evidence for a bounded time, never for ever.
    def arriving(t):
        tgt = Target(0.7, 25.0, 2.0, None, None, 40.0, 0.0, large_movement=True)
        return RadarSecond(t_s=float(t), targets=(tgt,), noise_floor_db=-40.0)

    det = PresenceDetector(PresenceConfig(hold_s=40.0))
    quiet = [det.update(RadarSecond(float(t), (), -40.0)) for t in range(30)]
    assert not any(s.present for s in quiet)
    assert det.update(arriving(30)).present
    settling = [det.update(_breather(t, ti=0.5, cvi=0.4, cva=0.7, q=0.6)) for t in range(31, 1000)]
    assert all(s.present for s in settling[: 330 - 31])  # kept for 5 min after arriving
    # Unconfirmed breathing never latches: gone within the hold (40 s) and the fall after it.
    assert not any(s.present for s in settling[400 - 31 :])
    # The same breathing where nobody arrived is nothing (the empty-room guarantee holds).
    det = PresenceDetector()
    out = [det.update(_breather(t, ti=0.5, cvi=0.4, cva=0.7, q=0.6)) for t in range(1000)]
    assert not any(s.present for s in out)


def test_a_reflector_breathing_like_a_sleeper_for_seconds_after_a_start_is_not_kept():
    # A curtain in a draught can pass every count of clear breathing for ~10 s by chance; right
    # after a start, with nobody seen arriving and nobody expected, that must not confirm it
    # (it would then be kept for ever on the weak evidence a swinging curtain always shows).
    det = PresenceDetector()
    out = [det.update(_breather(t)) for t in range(10)]
    out += [det.update(_breather(t, ti=0.5, cvi=0.3, cva=0.5, q=0.6)) for t in range(10, 600)]
    assert not any(s.present for s in out)
    # Told where the user was (a restart in the night), the same seconds confirm them.
    det = PresenceDetector()
    det.expect(0.7, 1800.0)
    out = [det.update(_breather(t)) for t in range(10)]
    out += [det.update(_breather(t, ti=0.5, cvi=0.3, cva=0.5, q=0.6)) for t in range(10, 600)]
    assert out[9].present and all(s.present for s in out[10:])


def test_somebody_else_arriving_does_not_cut_short_the_first_arrival():
    # A partner (or a cat) arriving at another distance before the user is confirmed keeps
    # the user's own arrival: each is kept for its own time.
    def arriving(t, d):
        tgt = Target(d, 25.0, 2.0, None, None, 40.0, 0.0, large_movement=True)
        return RadarSecond(t_s=float(t), targets=(tgt,), noise_floor_db=-40.0)

    def irregular(t, d):
        tgt = _breather(t, ti=0.5, cvi=0.4, cva=0.7, q=0.6).targets[0]
        return dataclasses.replace(tgt, distance_m=d)

    det = PresenceDetector(PresenceConfig(hold_s=40.0))
    for t in range(30):
        det.update(RadarSecond(float(t), (), -40.0))
    assert det.update(arriving(30, 0.7)).present
    out = []
    for t in range(31, 330):
        targets = (
            (irregular(t, 0.7),) if t != 200 else (irregular(t, 0.7), arriving(t, 1.5).targets[0])
        )
        out.append(det.update(RadarSecond(float(t), targets, -40.0)))
    assert all(s.present for s in out)
