from pathlib import Path

import pytest

from appliance.config import Config, load_config, parse_config, resolve_timezone
from appliance.errors import ConfigError


def test_empty_config_runs_on_defaults():
    cfg = parse_config({})
    assert cfg == Config()
    assert cfg.radar.type == "simulated"
    assert cfg.radar.n_bins == 29


def test_missing_default_file_gives_defaults(monkeypatch, tmp_path):
    monkeypatch.setattr("appliance.config.DEFAULT_CONFIG_PATH", tmp_path / "none.toml")
    assert load_config(None) == Config()


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[alarm]\nwindow_minutes = 3\n", "alarm.window_minutes", "unknown key"),
        ("[alarm]\nwindow_min = 60\n", "alarm.window_min", "less than or equal to 45"),
        ("[alarm]\ntime = '7am'\n", "alarm.time", "HH:MM"),
        ("[alarm]\ntime = '24:00'\n", "alarm.time", "HH:MM"),
        ("timezone = 'Mars/Olympus'\n", "timezone", "unknown time zone"),
        ("[radar]\nframe_rate_hz = 'fast'\n", "radar.frame_rate_hz", "number"),
        ("[radar]\nrange_start_m = 2.0\nrange_end_m = 1.0\n", "radar", "range_end_m"),
        ("[bed]\nuser_min_m = 1.0\nuser_max_m = 0.5\n", "bed", "user_max_m"),
        ("colour = 'red'\n", "colour", "unknown key"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text, key, reason):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.key == key
    assert reason in e.value.reason
    assert "\n" not in str(e.value)


def test_invalid_toml_is_one_line(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[alarm\ntime=")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(p)


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own ValidationError
        cfg.alarm.window_min = 10  # type: ignore[misc]


def test_time_is_normalised_and_zone_resolves():
    cfg = parse_config({"alarm": {"time": "7:05"}, "timezone": "Europe/Berlin"})
    assert cfg.alarm.time == "07:05"
    assert resolve_timezone(cfg).key == "Europe/Berlin"
