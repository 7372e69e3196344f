"""The configuration's tables as strict pydantic models: every key, its type and its allowed range.

The values and the reasons for them are in config/classpulse.toml, which a test keeps equal to the defaults
here (the defaults let code build a table without a file, as tests and benchmarks do). Ranges by unit:
longer than a day is no class, a head turns at most 90 degrees either way, and a relative weight above
1000 is a typo (it would also overflow the time arithmetic further on).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vocabulary.emotions import EMOTIONS

MAX_SECONDS = 86_400
MAX_DEGREES = 90
MAX_WEIGHT = 1_000

Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
Window = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
Share = Annotated[float, Field(ge=0, le=1)]
Degrees = Annotated[float, Field(ge=0, le=MAX_DEGREES)]
Weight = Annotated[float, Field(ge=0, le=MAX_WEIGHT)]
Probability = Annotated[float, Field(gt=0, lt=1)]


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
    window_overlap: Annotated[float, Field(ge=0, lt=1)] = 0.5
    centre_view_aspect: Annotated[float, Field(ge=1, le=10)] = 1.1
    photo_ring: Annotated[float, Field(gt=1, le=4)] = 1.4
    photo_flat_share: Share = 0.6
    photo_flat_levels: Annotated[int, Field(ge=0, le=255)] = 2


class SignalSettings(Table):
    eyes_closed_ratio: Annotated[float, Field(ge=0, le=1)] = 0.2
    mesh_min_logit: Annotated[float, Field(ge=-50, le=50)] = 0.0
    camera_off_flat_share: Share = 0.9
    flat_tolerance: Annotated[int, Field(ge=0, le=255)] = 8
    landmark_faces: Annotated[int, Field(ge=1, le=1000)] = 6
    eye_change: Annotated[float, Field(ge=0, le=3)] = 0.2


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
    detect: DetectConfig = DetectConfig()
    regions: RegionSettings = RegionSettings()
    signals: SignalSettings = SignalSettings()


class DashboardConfig(Table):
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8050
    behind_tls_proxy: bool = False


class ClassPulseConfig(Table):
    """The whole product's configuration, one table per part."""

    capture: CaptureConfig = CaptureConfig()
    score: ScoreConfig = ScoreConfig()
    flags: FlagConfig = FlagConfig()
    dashboard: DashboardConfig = DashboardConfig()

    @property
    def engagement(self) -> EngagementConfig:
        return EngagementConfig(score=self.score, flags=self.flags)
