"""The one configuration: the default file, a school's file over it, the command line over both, and every
way a file can be wrong; through the real loader and the three real command lines."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dash import dcc

import config
from config import ClassPulseConfig, ConfigError
from dashboard.pages import live, school
from db.migrate import upgrade
from db.queries import SessionInfo
from tests.cli import REPO, assert_one_clear_line, run_module
from tests.dashboard_server import _wait_until_serving as wait_until_serving
from tests.dashboard_server import free_port

# Each command line with an option that overrides a configuration value, and that value.
COMMANDS = {
    "capture": (["capture"], ["--fps", "2.5"], ("capture", "fps"), 2.5),
    "dashboard": (["dashboard"], ["--port", "9123"], ("dashboard", "port"), 9123),
    "analytics": (["analytics"], [], None, None),
}


def written(tmp_path: Path, text: str, name: str = "school.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def printed(result_stdout: str) -> dict[str, Any]:
    return tomllib.loads(result_stdout)


def test_the_default_file_holds_every_setting_with_the_schemas_defaults() -> None:
    assert config.load() == ClassPulseConfig()
    raw = tomllib.loads(config.DEFAULT_FILE.read_text())

    def keys(model: type[config.schema.Table], table: dict[str, object], where: str) -> None:
        assert set(table) == set(model.model_fields), where
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, config.schema.Table):
                inner = table[name]
                assert isinstance(inner, dict)
                keys(field.annotation, inner, f"{where}{name}.")

    keys(ClassPulseConfig, raw, "")


def test_every_setting_in_the_default_file_has_a_comment_above_it_or_its_group() -> None:
    lines = config.DEFAULT_FILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\w+ = ", line):
            above = lines[number - 1]
            # A key right after another shares its comment (max_pitch_degrees after max_yaw_degrees).
            assert above.startswith("#") or re.match(r"^(\w+ = |\[)", above), line


def test_a_schools_file_changes_only_what_it_names(tmp_path: Path) -> None:
    school = written(tmp_path, "[capture.signals]\nlandmark_faces = 8\n[flags]\nabsent_seconds = 90\n")
    loaded = config.load(school)
    assert loaded.capture.signals.landmark_faces == 8
    assert loaded.flags.absent_seconds == 90
    assert loaded.capture.signals.eye_change == ClassPulseConfig().capture.signals.eye_change
    assert loaded.score == ClassPulseConfig().score


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "[capture.signals]\nlandmark_face = 8\n",
            ("unknown key(s)", "capture.signals.landmark_face", "landmark_faces"),
        ),
        ("[capture]\nfsp = 2\n", ("capture.fsp",)),
        ("[dashbord]\nport = 1\n", ("dashbord", "the top level")),
        ("[capture]\nfps = nan\n", ("capture.fps", "finite")),
        ("[capture]\nfps = inf\n", ("capture.fps", "finite")),
        ("[capture]\nfps = 1e300\n", ("capture.fps", "at most 1000")),
        ("[capture]\nfps = -1\n", ("capture.fps", "not be less than")),
        ('[capture]\nfps = "2"\n', ("capture.fps", "expected a number")),
        ("[capture]\nattention_only = 1\n", ("capture.attention_only", "true or false")),
        ("[capture.signals]\nlandmark_faces = 2.5\n", ("capture.signals.landmark_faces", "an integer")),
        ("[capture.signals]\nlandmark_faces = true\n", ("capture.signals.landmark_faces", "an integer")),
        ("[capture.detect]\nscore_threshold = 1\n", ("capture.detect.score_threshold", "less than 1")),
        ("[dashboard]\nport = 70000\n", ("dashboard.port", "at most 65535")),
        ("capture = 3\n", ("capture", "expected a table")),
        ('[score]\nnegative_emotions = ["sad", 3]\n', ("score.negative_emotions[1]", "text")),
        ("[score.weights]\npresent = 0\nattentive = 0\neyes_open = 0\nexpression = 0\n", ("score.weights", "zero")),
        ("[capture\nfps = 2\n", ("not TOML",)),
        ("[capture.names]\nmin_glyph = 3\n", ("capture.names.min_glyph", "min_glyphs")),
        ("[capture.names]\nmin_glyphs = 0\n", ("capture.names.min_glyphs", "not be less than 1")),
        ("[capture.names]\nocr_text_height = 44.0\n", ("capture.names.ocr_text_height", "an integer")),
        ("[capture.layout]\nmin_aspect = 3.0\n", ("capture.layout", "min_aspect 3 must be less than max_aspect 2.6")),
        ("[capture.layout]\nedge_level = 300\n", ("capture.layout.edge_level", "at most 255")),
        ("[capture.grid]\nmin_tiles = 0\n", ("capture.grid.min_tiles", "not be less than 1")),
        ("[capture.identity]\nappearance_match = 1.5\n", ("capture.identity.appearance_match", "at most 1")),
        ("[capture.identity]\nfrontal_degree = 20\n", ("capture.identity.frontal_degree", "frontal_degrees")),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_the_key(tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    path = written(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        config.load(path)
    message = str(raised.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message


def test_a_command_line_value_is_checked_like_a_files() -> None:
    with pytest.raises(ConfigError, match=r"command line: capture\.fps: must be at most 1000"):
        config.override(ClassPulseConfig(), {"capture.fps": 5000.0})


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_key_stops_each_command_with_one_line(command: str, tmp_path: Path) -> None:
    module, _, _, _ = COMMANDS[command]
    bad = written(tmp_path, "[flags]\nabsent_secs = 60\n")
    assert_one_clear_line(run_module(*module, "--config", str(bad), "--print-config"), str(bad), "flags.absent_secs")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bad_value_stops_each_command_with_one_line(command: str, tmp_path: Path) -> None:
    module, _, _, _ = COMMANDS[command]
    bad = written(tmp_path, "[score]\nmax_yaw_degrees = 1e300\n")
    result = run_module(*module, "--config", str(bad), "--print-config")
    assert_one_clear_line(result, str(bad), "score.max_yaw_degrees", "at most 90")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_print_config_loads_back_to_the_same_values_with_the_file_and_the_options_applied(
    command: str, tmp_path: Path
) -> None:
    module, option, key, value = COMMANDS[command]
    school = written(
        tmp_path,
        "[flags]\nabsent_seconds = 75\n[capture]\nfps = 4\n[dashboard]\nport = 8111\n"
        "[capture.identity]\nname_match = 0.9\n[capture.names]\nmin_glyphs = 3\n",
    )
    first = run_module(*module, "--config", str(school), *option, "--print-config")
    assert first.returncode == 0, first.stderr
    shown = printed(first.stdout)
    assert shown["flags"]["absent_seconds"] == 75
    assert shown["capture"]["identity"]["name_match"] == 0.9
    assert shown["capture"]["names"]["min_glyphs"] == 3
    # Capture's tile, name and identity tuning is shown in full, every key of each table.
    for table in ("layout", "grid", "names", "identity"):
        assert set(shown["capture"][table]) == set(type(getattr(ClassPulseConfig().capture, table)).model_fields)
    if key is not None:
        table, name = key
        assert shown[table][name] == value
    again = written(tmp_path, first.stdout, "printed.toml")
    assert config.load(again) == ClassPulseConfig.model_validate(shown)
    second = run_module(*module, "--config", str(again), "--print-config")
    assert second.returncode == 0, second.stderr
    assert printed(second.stdout) == shown


def test_analytics_report_still_takes_its_config_after_the_command(tmp_path: Path) -> None:
    bad = written(tmp_path, "[score]\nbin_secs = 5\n")
    result = run_module("analytics", "report", "--session", "s", "--out", str(tmp_path / "r"), "--config", str(bad))
    assert_one_clear_line(result, str(bad), "score.bin_secs", "bin_seconds")


def test_the_dashboard_listens_where_its_file_says(tmp_path: Path) -> None:
    port = free_port()
    school = written(tmp_path, f'[dashboard]\nhost = "127.0.0.1"\nport = {port}\n')
    log = tmp_path / "dashboard.log"
    database = f"sqlite:///{tmp_path / 'class.db'}"
    upgrade(database).dispose()
    command = ["dashboard", "--db", database, "--data-dir", str(tmp_path)]
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", *command, "--config", str(school)], cwd=REPO, stdout=output, stderr=output
        )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", server, log)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert f"serving on http://127.0.0.1:{port}" in log.read_text()


def test_the_pages_refresh_and_snooze_as_the_file_says(tmp_path: Path) -> None:
    school_file = written(
        tmp_path, "[dashboard]\nlive_refresh_seconds = 5.0\nschool_refresh_seconds = 30.0\nsnooze_minutes = 3\n"
    )
    lesson = SessionInfo(1, "maths", "screen", datetime(2026, 12, 3, 9, tzinfo=UTC), None)
    try:
        config.choose(school_file)
        assert school.refresh_ms() == 30_000
        (interval,) = [c for c in live.layout(lesson)._traverse() if isinstance(c, dcc.Interval)]
        assert interval.interval == 5_000
    finally:
        config.choose(None)
    assert school.refresh_ms() == 10_000  # the defaults again, for the tests that follow
