from appliance.config import BedConfig
from appliance.frames import PresenceState, RadarSecond, Target
from appliance.tracking import UserTracker

P = PresenceState(0.0, True, 0.9, "still")


def _t(d, br=14.0):
    return Target(d, 25.0, 2.0, br, 60.0, 0.5, 0.9)


def test_user_is_the_nearest_sleeper_on_the_users_side():
    tr = UserTracker(BedConfig(user_min_m=0.3, user_max_m=1.2))
    out = tr.update(RadarSecond(1.0, (_t(0.7), _t(1.5)), -40.0), P)
    assert out.user is not None and abs(out.user.distance_m - 0.7) < 1e-9
    assert out.others == 1


def test_partner_alone_is_not_the_user():
    tr = UserTracker(BedConfig(user_min_m=0.3, user_max_m=1.2))
    out = tr.update(RadarSecond(1.0, (_t(1.55),), -40.0), P)
    assert out.user is None and out.others == 1


def test_tracker_keeps_the_user_when_a_pet_comes_nearer_later():
    tr = UserTracker(BedConfig(user_min_m=0.3, user_max_m=1.2))
    tr.update(RadarSecond(1.0, (_t(0.8),), -40.0), P)
    out = tr.update(RadarSecond(2.0, (_t(0.45, br=30.0), _t(0.81)), -40.0), P)
    assert out.user is not None and abs(out.user.distance_m - 0.81) < 1e-9


def test_nobody_when_presence_says_empty():
    tr = UserTracker()
    out = tr.update(RadarSecond(1.0, (_t(0.7),), -40.0), PresenceState(1.0, False, 0.1, "empty"))
    assert out.user is None


def test_a_fast_shallow_breather_alone_in_the_zone_is_a_pet_not_the_user():
    tr = UserTracker(BedConfig())
    outs = [
        tr.update(
            RadarSecond(float(i), (Target(0.95, 15.0, 0.3, 30.0, 170.0, 0.5, 0.9),), -40.0), P
        )
        for i in range(60)
    ]
    assert outs[-1].user is None and outs[-1].attribution == "other"


def test_the_tracker_learns_where_the_user_lies():
    tr = UserTracker(BedConfig(), learned_user_m=0.70)
    for i in range(120):
        tr.update(RadarSecond(float(i), (_t(0.80),), -40.0), P)
    assert tr.learned_user_m is not None and 0.70 < tr.learned_user_m < 0.80
