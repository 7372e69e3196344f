"""The configuration's tables as strict pydantic models: every key, its type and its allowed range.

The values and the reasons for them are in config/classpulse.toml, which a test keeps equal to the defaults
here (the defaults let code build a table without a file, as tests and benchmarks do). Ranges by unit:
longer than a day is no class, a head turns at most 90 degrees either way, and a relative weight above
1000 is a typo (it would also overflow the time arithmetic further on); a grey level is 0-255, a correlation
-1 to 1, and a count of frames or pixels at least 1 (a frame is never wider or taller than 10,000 pixels).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vocabulary.emotions import EMOTIONS

MAX_SECONDS = 86_400
MAX_DEGREES = 90
MAX_WEIGHT = 1_000
MAX_SIGN_IN_HOURS = 168  # a week: a sign-in that outlives it is a lost or shared computer left signed in

Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
Window = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
Share = Annotated[float, Field(ge=0, le=1)]
Degrees = Annotated[float, Field(ge=0, le=MAX_DEGREES)]
Weight = Annotated[float, Field(ge=0, le=MAX_WEIGHT)]
Probability = Annotated[float, Field(gt=0, lt=1)]
Tolerance = Annotated[float, Field(ge=0, lt=1)]
GreyLevels = Annotated[int, Field(ge=0, le=255)]
Correlation = Annotated[float, Field(ge=-1, le=1)]
Pixels = Annotated[int, Field(ge=1, le=10_000)]
Frames = Annotated[int, Field(ge=1, le=100_000)]


class Table(BaseModel):
    """A TOML table: only its own keys, each of exactly its type (no "1" for 1, no true for 1), finite numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class Weights(Table):
    present: Weight = 0.4
    attentive: Weight = 0.35
    eyes_open: Weight = 0.15
    expression: Weight = 0.1

    @model_validator(mode="after")
    def _some_weight(self) -> Weights:
        if self.present + self.attentive + self.eyes_open + self.expression <= 0:
            raise ValueError("must not all be zero")
        return self


class ScoreConfig(Table):
    bin_seconds: Annotated[int, Field(gt=0, le=MAX_SECONDS)] = 10
    emotion_window_seconds: Window = 10.0
    max_yaw_degrees: Degrees = 30.0
    max_pitch_degrees: Degrees = 25.0
    # A TOML array is a list; strict mode would take only a tuple, so the container alone is lax.
    negative_emotions: Annotated[tuple[str, ...], Field(strict=False)] = ("angry", "disgust", "fear", "sad")
    weights: Weights = Weights()

    @field_validator("negative_emotions")
    @classmethod
    def _known_emotions(cls, emotions: tuple[str, ...]) -> tuple[str, ...]:
        if unknown := sorted(set(emotions) - set(EMOTIONS)):
            raise ValueError(f"unknown {unknown}; known: {', '.join(EMOTIONS)}")
        return emotions


class FlagConfig(Table):
    absent_seconds: Seconds = 60.0
    looking_away_window_seconds: Window = 120.0
    looking_away_share: Share = 0.5
    eyes_closed_seconds: Seconds = 10.0
    negative_level: Share = 0.5
    negative_seconds: Seconds = 30.0
    drop_window_seconds: Window = 60.0
    drop_fraction: Share = 0.4
    baseline_seconds: Seconds = 300.0
    turned_gap_seconds: Seconds = 180.0
    negative_margin: Share = 0.2
    negative_max_engagement: Share = 0.8


class EngagementConfig(Table):
    """The score and the flags: what analytics reads."""

    score: ScoreConfig = ScoreConfig()
    flags: FlagConfig = FlagConfig()


class DetectConfig(Table):
    score_threshold: Probability = 0.6
    iou_threshold: Probability = 0.3


class RegionSettings(Table):
    merge_iou: Probability = 0.3
    window_overlap: Tolerance = 0.5
    centre_view_aspect: Annotated[float, Field(ge=1, le=10)] = 1.1
    photo_ring: Annotated[float, Field(gt=1, le=4)] = 1.4
    photo_flat_share: Share = 0.6
    photo_flat_levels: GreyLevels = 2
    redetect_change: GreyLevels = 8
    redetect_frames: Frames = 10
    follow_shift: Annotated[float, Field(ge=0, le=1)] = 0.25
    follow_likeness: Correlation = 0.85
    follow_score: Probability = 0.8


class SignalSettings(Table):
    eyes_closed_ratio: Annotated[float, Field(ge=0, le=1)] = 0.2
    mesh_min_logit: Annotated[float, Field(ge=-50, le=50)] = 0.0
    camera_off_flat_share: Share = 0.9
    flat_tolerance: GreyLevels = 8
    landmark_faces: Annotated[int, Field(ge=1, le=1000)] = 6
    eye_change: Annotated[float, Field(ge=0, le=3)] = 0.2
    landmark_refresh_frames: Frames = 20


class LayoutSettings(Table):
    recheck_frames: Frames = 30
    work_width: Annotated[int, Field(ge=320, le=10_000)] = 1600
    edge_level: GreyLevels = 14
    min_side_pixels: Pixels = 40
    min_side_fraction: Annotated[float, Field(ge=0, le=0.5)] = 0.06
    side_coverage: Share = 0.75
    sides_mean: Share = 0.9
    cut_coverage: Share = 0.9
    min_aspect: Annotated[float, Field(gt=0, le=10)] = 0.45
    max_aspect: Annotated[float, Field(gt=0, le=10)] = 2.6
    size_tolerance: Tolerance = 0.1
    tile_overlap: Share = 0.1
    camera_off_content: Share = 0.5
    screen_flat: Share = 0.75
    part_of_tile: Share = 0.5
    screen_change: Annotated[float, Field(ge=0, le=255)] = 12.0
    strip_area: Share = 0.35

    @model_validator(mode="after")
    def _aspects_in_order(self) -> LayoutSettings:
        if self.min_aspect >= self.max_aspect:
            raise ValueError(f"min_aspect {self.min_aspect:g} must be less than max_aspect {self.max_aspect:g}")
        return self


class GridSettings(Table):
    max_background_level: GreyLevels = 60
    background_tolerance: GreyLevels = 6
    codec_tolerance: GreyLevels = 24
    gap_noise_fraction: Annotated[float, Field(ge=0, le=0.5)] = 0.002
    min_tile_fraction: Annotated[float, Field(gt=0, le=1)] = 0.05
    size_tolerance: Tolerance = 0.08
    min_tiles: Annotated[int, Field(ge=1, le=1000)] = 2


class NameSettings(Table):
    no_label_recheck_frames: Frames = 30
    confirm_frames: Frames = 3
    reread_frames: Frames = 30
    reread_named_frames: Annotated[int, Field(ge=0, le=100_000)] = 60
    fingerprint_change: Share = 0.02
    label_band: Annotated[float, Field(gt=0, le=1)] = 0.25
    centre_band: Annotated[float, Field(gt=0, le=1)] = 0.4
    above_band: Annotated[float, Field(ge=0, le=1)] = 0.3
    min_text_height: Pixels = 5
    ocr_text_height: Annotated[int, Field(ge=8, le=400)] = 44
    min_glyphs: Annotated[int, Field(ge=1, le=100)] = 2
    second_reading_confidence: Annotated[float, Field(ge=0, le=100)] = 80.0


class IdentitySettings(Table):
    appearance_match: Correlation = 0.6
    appearance_sure: Correlation = 0.85
    appearance_different: Correlation = 0.5
    frontal_degrees: Degrees = 20.0
    name_match: Share = 0.85
    misread_likeness: Share = 0.6
    name_switch_frames: Frames = 3
    min_cut_prefix: Annotated[int, Field(ge=1, le=100)] = 4
    max_track_step: Annotated[float, Field(gt=0, le=100)] = 1.0
    track_patience: Frames = 30
    position_weight: Annotated[float, Field(ge=0, le=5)] = 0.5


class CaptureConfig(Table):
    fps: Annotated[float, Field(ge=1 / MAX_SECONDS, le=1000)] = 1.0
    detector: Annotated[str, Field(min_length=1)] = "blazeface"
    ocr_lang: Annotated[str, Field(pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")] = "eng"
    attention_only: bool = False
    status_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    drain_seconds: Seconds = 60.0
    buffer_frames: Annotated[int, Field(ge=1, le=1_000_000)] = 3600
    server_drain_seconds: Seconds = 10.0
    server_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    threads: Annotated[int, Field(ge=1, le=64)] = 1
    window_follow_seconds: Annotated[float, Field(ge=0, le=3600)] = 2.0
    detect: DetectConfig = DetectConfig()
    regions: RegionSettings = RegionSettings()
    signals: SignalSettings = SignalSettings()
    layout: LayoutSettings = LayoutSettings()
    grid: GridSettings = GridSettings()
    names: NameSettings = NameSettings()
    identity: IdentitySettings = IdentitySettings()


class ClassroomConfig(Table):
    enabled: bool = True
    preview_seconds: Annotated[float, Field(ge=0.5, le=60)] = 2.0
    stop_seconds: Annotated[float, Field(gt=0, le=3600)] = 90.0
    error_lines: Annotated[int, Field(ge=1, le=100)] = 6


class DashboardConfig(Table):
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8050
    behind_tls_proxy: bool = False
    sign_in_hours: Annotated[float, Field(gt=0, le=MAX_SIGN_IN_HOURS)] = 12.0
    idle_minutes: Annotated[float, Field(gt=0, le=MAX_SIGN_IN_HOURS * 60)] = 60.0
    login_failures_per_name: Annotated[int, Field(ge=1, le=1000)] = 5
    login_failures_per_address: Annotated[int, Field(ge=1, le=100_000)] = 20
    login_failure_window_seconds: Window = 300.0
    login_checks_at_once: Annotated[int, Field(ge=1, le=64)] = 2
    live_refresh_seconds: Annotated[float, Field(ge=0.5, le=60)] = 2.0
    snooze_minutes: Annotated[int, Field(ge=1, le=240)] = 10
    school_refresh_seconds: Annotated[float, Field(ge=1, le=600)] = 10.0
    ingest_idle_close_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 10.0
    classroom: ClassroomConfig = ClassroomConfig()


class DatabaseConfig(Table):
    partition_days_ahead: Annotated[int, Field(ge=1, le=366)] = 7
    retention_lock_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0


class ServerConfig(Table):
    threads: Annotated[int, Field(ge=1, le=256)] = 16
    connections: Annotated[int, Field(ge=10, le=10_000)] = 1000


class ClassPulseConfig(Table):
    """The whole product's configuration, one table per part."""

    capture: CaptureConfig = CaptureConfig()
    score: ScoreConfig = ScoreConfig()
    flags: FlagConfig = FlagConfig()
    dashboard: DashboardConfig = DashboardConfig()
    database: DatabaseConfig = DatabaseConfig()
    server: ServerConfig = ServerConfig()

    @property
    def engagement(self) -> EngagementConfig:
        return EngagementConfig(score=self.score, flags=self.flags)
