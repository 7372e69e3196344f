"""The write side: records one session's analysed frames, one transaction per frame, with the frame's additions
to the session's roll-ups (db.rollups) in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from db.engine import write_transaction
from db.errors import reported_as
from db.lease import Heartbeat, new_writer, release, renew, take
from db.rollups import RollupRule, add_frame
from db.schema import PROBABILITY_COLUMNS, SIGNAL_COLUMNS, TILE_COLUMNS, frames, observations, sessions, students
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence


@dataclass
class SessionRecorder:
    """Writes FrameResults of one session. Open with `SessionRecorder.open`; usable as a context manager."""

    engine: Engine
    session_id: int
    session_name: str
    next_frame_index: int
    # Per student key: its row id and the last tile written, so unchanged tiles cost no UPDATE.
    _student_ids: dict[str, int] = field(default_factory=dict)
    _tiles: dict[str, Box | None] = field(default_factory=dict)
    # Student keys whose display name is stored (read from their tile, or set by a teacher's rename).
    _named: set[str] = field(default_factory=set)
    # This recorder's name in the session's lease (db.lease), and the thread renewing it.
    _writer: str = ""
    _heartbeat: Heartbeat | None = None
    # What the roll-ups count as attentive and negative: this process's configuration.
    _rollup_rule: RollupRule = field(default_factory=RollupRule.configured)

    @classmethod
    def open(cls, engine: Engine, session_name: str, source: str, teacher: str | None = None) -> SessionRecorder:
        """Start the session `session_name`, or continue it (after its last stored frame) if it exists.

        `teacher`: the dashboard user who owns the session; a continued session keeps the owner it has.
        The recorder holds the session's lease (db.lease) until `close`; SessionBusyError, with nothing
        changed, while another capture holds it.
        """
        writer = new_writer()
        with reported_as("open session in", engine.url), write_transaction(engine) as connection:
            recorder = cls._start(connection, engine, session_name, source, teacher, writer)
        recorder._writer = writer
        recorder._heartbeat = Heartbeat(engine, recorder.session_id, writer)
        return recorder

    @classmethod
    def _start(
        cls, connection: Connection, engine: Engine, session_name: str, source: str, teacher: str | None, writer: str
    ) -> SessionRecorder:
        # FOR UPDATE (PostgreSQL): a purge, a merge or another capture deciding about this session waits for this
        # transaction (db.lease).
        session_id = connection.scalar(select(sessions.c.id).where(sessions.c.name == session_name).with_for_update())
        if session_id is None:
            session_id = connection.execute(
                insert(sessions)
                .values(name=session_name, source=source, started_at=datetime.now(UTC), teacher=teacher)
                .returning(sessions.c.id)
            ).scalar_one()
            take(connection, session_id, session_name, writer)
            return cls(engine, session_id, session_name, next_frame_index=0)
        take(connection, session_id, session_name, writer)
        # Continued: more frames will change its report.
        connection.execute(
            update(sessions).where(sessions.c.id == session_id).values(ended_at=None, mean_engagement=None)
        )
        if teacher is not None:
            connection.execute(
                update(sessions)
                .where(sessions.c.id == session_id, sessions.c.teacher.is_(None))
                .values(teacher=teacher)
            )
        recorder = cls(engine, session_id, session_name, _next_frame_index(connection, session_id))
        recorder._load_students(connection)
        return recorder

    def record(self, result: FrameResult) -> None:
        """Write the frame, its observations, its students' updates and its roll-ups in one transaction."""
        if result.frame_index < self.next_frame_index:
            raise ValueError(
                f"frame {result.frame_index} is already recorded in session {self.session_name!r}; "
                f"the next frame index is {self.next_frame_index}"
            )
        if result.timestamp.utcoffset() is None:
            raise ValueError(f"frame {result.frame_index}: timestamp {result.timestamp} has no timezone")
        latest = _latest_per_student(result.observations)
        # Built before the transaction so a malformed observation fails before anything is written.
        observation_rows = [self._observation_row(o, result) for o in result.observations]
        with reported_as("record a frame in", self.engine.url), self.engine.begin() as connection:
            # First, so a frame is never written by a capture that has lost the session to another.
            renew(connection, self.session_id, self._writer)
            connection.execute(
                insert(frames).values(
                    session_id=self.session_id,
                    frame_index=result.frame_index,
                    ts=result.timestamp,
                    faces=result.faces,
                    processing_ms=float(result.processing_ms),
                )
            )
            names = result.student_names
            student_ids = self._student_ids | self._insert_new_students(connection, latest, names, result.timestamp)
            self._update_known_students(connection, latest, result.timestamp)
            self._name_known_students(connection, names)
            if observation_rows:
                for row, o in zip(observation_rows, result.observations, strict=True):
                    row["student_id"] = student_ids[o.student_key]
                connection.execute(insert(observations), observation_rows)
                add_frame(connection, self._rollup_rule, self.session_id, observation_rows)
        # Only after the commit: a failed frame leaves the caches as the database is.
        self._student_ids = student_ids
        self._tiles.update({key: _known_tile(o, self._tiles.get(key)) for key, o in latest.items()})
        self._named.update(key for key in latest if key in names)
        self.next_frame_index = result.frame_index + 1

    def reload(self) -> None:
        """Read the session's students and next frame index back from the database: after a lost connection,
        a commit may have happened without this process hearing of it."""
        with reported_as("read session from", self.engine.url), self.engine.connect() as connection:
            self.next_frame_index = _next_frame_index(connection, self.session_id)
            self._student_ids.clear()
            self._tiles.clear()
            self._named.clear()
            self._load_students(connection)

    def close(self) -> None:
        """Stamp the session's end time and release its lease; a session this recorder lost is left as it is."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        with reported_as("close session in", self.engine.url), self.engine.begin() as connection:
            if release(connection, self.session_id, self._writer):
                connection.execute(
                    update(sessions).where(sessions.c.id == self.session_id).values(ended_at=datetime.now(UTC))
                )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _load_students(self, connection: Connection) -> None:
        columns = [students.c[name] for name in ("id", "key", "display_name", *TILE_COLUMNS)]
        for row in connection.execute(select(*columns).where(students.c.session_id == self.session_id)):
            self._student_ids[row.key] = row.id
            if row.display_name is not None:
                self._named.add(row.key)
            self._tiles[row.key] = None if row.tile_x is None else Box(row.tile_x, row.tile_y, row.tile_w, row.tile_h)

    def _insert_new_students(
        self, connection: Connection, latest: dict[str, Observation], names: dict[str, str], ts: datetime
    ) -> dict[str, int]:
        rows = [
            {
                "session_id": self.session_id,
                "key": key,
                "display_name": names.get(key),
                "first_seen": ts,
                "last_seen": ts,
                **_tile_values(o.tile),
            }
            for key, o in latest.items()
            if key not in self._student_ids
        ]
        if not rows:
            return {}
        statement = insert(students).returning(students.c.key, students.c.id, sort_by_parameter_order=True)
        return {row.key: row.id for row in connection.execute(statement, rows)}

    def _update_known_students(self, connection: Connection, latest: dict[str, Observation], ts: datetime) -> None:
        known = [key for key in latest if key in self._student_ids]
        if not known:
            return
        connection.execute(
            update(students).where(students.c.id.in_([self._student_ids[key] for key in known])).values(last_seen=ts)
        )
        # A tile moves only when the gallery re-lays out; a face without a tile keeps its last one.
        moved = [
            {"student": self._student_ids[key], **_tile_values(latest[key].tile)}
            for key in known
            if latest[key].tile is not None and latest[key].tile != self._tiles.get(key)
        ]
        if moved:
            connection.execute(
                update(students)
                .where(students.c.id == bindparam("student"))
                .values({name: bindparam(name) for name in TILE_COLUMNS}),
                moved,
            )

    def _name_known_students(self, connection: Connection, names: dict[str, str]) -> None:
        """Store the first name read for a known student; never over a name already there (a teacher's rename)."""
        unnamed = [
            {"student": self._student_ids[key], "name": name}
            for key, name in names.items()
            if key in self._student_ids and key not in self._named
        ]
        if unnamed:
            connection.execute(
                update(students)
                .where(students.c.id == bindparam("student"), students.c.display_name.is_(None))
                .values(display_name=bindparam("name")),
                unnamed,
            )

    def _observation_row(self, o: Observation, result: FrameResult) -> dict[str, Any]:
        """The observation's columns except `student_id`, which a new student only gets inside the transaction."""
        return {
            "session_id": self.session_id,
            "frame_index": result.frame_index,
            "ts": result.timestamp,
            "x": int(o.box.x),
            "y": int(o.box.y),
            "w": int(o.box.w),
            "h": int(o.box.h),
            "emotion": None if o.emotion is None else int(o.emotion),
            **_probability_values(o),
            **_signal_values(o),
        }


def _next_frame_index(connection: Connection, session_id: int) -> int:
    last = connection.scalar(select(func.max(frames.c.frame_index)).where(frames.c.session_id == session_id))
    return 0 if last is None else last + 1


def _latest_per_student(found: Sequence[Observation]) -> dict[str, Observation]:
    return {o.student_key: o for o in found}


def _known_tile(o: Observation, previous: Box | None) -> Box | None:
    return o.tile if o.tile is not None else previous


def _tile_values(tile: Box | None) -> dict[str, int | None]:
    values = (None,) * 4 if tile is None else (int(tile.x), int(tile.y), int(tile.w), int(tile.h))
    return dict(zip(TILE_COLUMNS, values, strict=True))


def _probability_values(o: Observation) -> dict[str, float | None]:
    if o.probabilities is None:
        return dict.fromkeys(PROBABILITY_COLUMNS)
    probabilities = [float(p) for p in o.probabilities]
    if len(probabilities) != len(PROBABILITY_COLUMNS):
        raise ValueError(
            f"student {o.student_key!r}: {len(probabilities)} probabilities, expected {len(PROBABILITY_COLUMNS)}"
        )
    return dict(zip(PROBABILITY_COLUMNS, probabilities, strict=True))


def _signal_values(o: Observation) -> dict[str, str | float | bool | None]:
    """The signal columns, each read from the FaceSignals field of its name (db.schema.SIGNAL_COLUMNS)."""
    signals = o.signals or FaceSignals(Presence.FACE)
    values = {column: getattr(signals, column) for column in SIGNAL_COLUMNS}
    return values | {"presence": signals.presence.value}
