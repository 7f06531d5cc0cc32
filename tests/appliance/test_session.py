from appliance.config import SessionConfig
from appliance.epochs import FEATURE_NAMES
from appliance.frames import ABSENT, EpochFeatures, Stage, StagedEpoch
from appliance.session import SessionTracker

NAN = float("nan")


def _ep(i, stage, move=0.0):
    present = 0.0 if stage == ABSENT else 1.0
    vals = [NAN] * len(FEATURE_NAMES)
    vals[FEATURE_NAMES.index("move_frac")] = move
    vals[FEATURE_NAMES.index("ctx_move_10")] = move
    vals[FEATURE_NAMES.index("resp_q")] = 0.9
    f = EpochFeatures(1000.0 + 30 * i, i, present, tuple(vals), None, None, None, 0.0, present)
    return StagedEpoch(f.t_s, i, stage, (0.25,) * 4, 0.25, f)


def _night(codes, cfg=None, moves=None):
    st = SessionTracker(cfg or SessionConfig(start_after_s=300.0, close_after_absent_s=1800.0))
    ups = [st.update(_ep(i, c, (moves or {}).get(i, 0.0))) for i, c in enumerate(codes)]
    ups.append(st.flush())
    return ups


W, L, D, R, A = Stage.WAKE, Stage.LIGHT, Stage.DEEP, Stage.REM, ABSENT


def test_session_starts_after_five_minutes_at_the_first_present_epoch():
    ups = _night([A] * 5 + [W] * 12 + [L] * 20)
    started = [u.started_s for u in ups if u.started_s is not None]
    assert started == [1000.0 + 30 * 5]
    stored = [e.index for u in ups for e in u.epochs]
    assert stored == list(range(5, 37))


def test_a_short_visit_is_not_a_session():
    ups = _night([W] * 5 + [A] * 100)
    assert not any(u.started_s for u in ups)
    assert not any(u.closed for u in ups)


def test_bathroom_trip_is_one_night_with_an_out_of_bed_episode():
    codes = [W] * 10 + [L] * 100 + [A] * 16 + [L] * 100 + [W] * 4 + [A] * 70
    ups = _night(codes)
    closed = [u.closed for u in ups if u.closed]
    assert len(closed) == 1
    night = closed[0]
    assert len(night.hypnogram) == 230  # trailing absence trimmed
    assert night.metrics.out_of_bed == 1
    kinds = [e.kind for u in ups for e in u.events]
    assert kinds.count("in_bed") == 1 and kinds.count("out_of_bed") == 2
    assert "session_closed" in kinds and "final_wake" in kinds


def test_intent_from_stillness_gives_latency():
    codes = [W] * 60 + [W] * 20 + [L] * 200 + [D] * 50 + [R] * 30
    moves = {i: 0.5 for i in range(60)}  # reading: moving every epoch
    night = next(u.closed for u in _night(codes, moves=moves) if u.closed)
    assert night.intent.intent_index is not None and abs(night.intent.intent_index - 60) <= 2
    assert night.metrics.sol_min is not None and abs(night.metrics.sol_min - 10.0) <= 1.0


def test_states_episodes_and_latest_hour():
    codes = [W] * 10 + [L] * 100 + [A] * 16 + [L] * 100 + [W] * 4 + [A] * 70
    ups = _night(codes)
    states = [u.state for u in ups if u.state]
    assert states[0] in ("in_bed", "trying_to_sleep")
    assert "asleep" in states and "out_of_bed" in states
    assert states[-1] == "monitoring"
    night = next(u.closed for u in ups if u.closed)
    assert [e.duration_min for e in night.out_of_bed] == [8.0]
    assert night.to_dict()["out_of_bed_episodes"][0]["duration_min"] == 8.0
    # 1000 s after the UTC epoch is 00:16; a latest hour of 01:00 closes the session there.
    cfg = SessionConfig(start_after_s=300.0, close_after_absent_s=1800.0, latest_close="01:00")
    ups = _night([W] * 10 + [L] * 300, cfg)
    closed = [u.closed for u in ups if u.closed]
    assert closed[0].closed_by == "latest_hour" and closed[0].end_s <= 3600.0 + 30.0


def test_a_resumed_session_keeps_the_story_the_light_level_told(tmp_path):
    # Lying still with the lights on (reading), then lights out: the light places the intent.
    # A restart in the night re-scores the stored epochs; with their lux they tell the same story.
    from dataclasses import replace

    from appliance.store import Store

    codes = [W] * 70 + [L] * 200 + [W] * 4
    lux = [150.0] * 60 + [0.2] * 214
    eps = [_ep(i, c) for i, c in enumerate(codes)]
    eps = [
        replace(e, features=replace(e.features, illuminance_lux=x))
        for e, x in zip(eps, lux, strict=True)
    ]

    def intent(restart_at=None):
        cfg = SessionConfig(start_after_s=300.0, close_after_absent_s=1800.0)
        st = SessionTracker(cfg)
        with Store.open(tmp_path / f"{restart_at}.db") as store:
            sid = store.start_session(eps[0].t_s, tz="UTC", source="test")
            for i, e in enumerate(eps):
                if i == restart_at:
                    st = SessionTracker(cfg)
                    st.resume([r.to_staged(FEATURE_NAMES) for r in store.epochs(sid)])
                for kept in st.update(e).epochs:
                    store.add_epoch(sid, kept, FEATURE_NAMES)
        return st.flush().closed.intent.intent_index

    straight = intent()
    assert straight is not None and abs(straight - 60) <= 2
    assert intent(restart_at=150) == straight
