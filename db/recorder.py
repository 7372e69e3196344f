"""The write side: records one session's analysed frames, one transaction per frame, with the frame's additions
to the session's roll-ups (db.rollups) in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from types import TracebackType
from typing import Any, Self

from psycopg import sql
from sqlalchemy import Connection, Engine, Table, bindparam, func, insert, select, update
from sqlalchemy.engine import Dialect

from db.bulk import array_literal, column_arrays, insert_rows, unnested_rows, upsert_statement
from db.classes import RosterStudent, class_for, overrule_reading, roster_student, session_class
from db.engine import write_transaction
from db.errors import DatabaseError, reported_as
from db.lease import LEASE_SECONDS, Heartbeat, new_writer, release, renew, take
from db.rollups import KEY, SUMMED, RollupRule, add_frame, added_rows
from db.schema import (
    PROBABILITY_COLUMNS,
    SIGNAL_COLUMNS,
    TILE_COLUMNS,
    frames,
    observations,
    session_rollups,
    sessions,
    students,
)
from db.stages import Stages
from db.tokens import require_live_token
from vocabulary.records import Box, FaceSignals, FrameResult, Observation, Presence

# Built once: SQLAlchemy then compiles it once, where a statement built per frame is compiled again each time.
_LAST_SEEN = (
    update(students).where(students.c.id.in_(bindparam("ids", expanding=True))).values(last_seen=bindparam("ts"))
)


@dataclass(frozen=True)
class _AtOnce:
    """A batch's whole write as one PostgreSQL statement: the lease renewed (and the capture token checked), the
    frames inserted, the students' last sighting set, the observations inserted and the roll-ups upserted, each
    row set sent as one array per column (db.bulk.unnested_rows). Every part writes only when the lease was
    renewed, so a capture that lost its session (or whose token was revoked) writes nothing; the statement
    answers 1 when it wrote, 0 when it did not. Data-modifying WITH parts all run, once, in one snapshot."""

    text: str
    frame_columns: tuple[str, ...]
    observation_columns: tuple[str, ...]
    rollup_columns: tuple[str, ...]

    @classmethod
    @cache
    def of(
        cls,
        dialect: Dialect,
        frame_columns: tuple[str, ...],
        observation_columns: tuple[str, ...],
        rollup_columns: tuple[str, ...],
    ) -> _AtOnce:
        renewed = sql.SQL("WHERE EXISTS (SELECT FROM lease)")

        def inserted(table: Table, columns: tuple[str, ...]) -> sql.Composed:
            return sql.SQL("INSERT INTO {} ({}) {} {}").format(
                sql.Identifier(table.name),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                unnested_rows(dialect, table, columns),
                renewed,
            )

        rollup_rows = sql.SQL("{} {}").format(unnested_rows(dialect, session_rollups, rollup_columns), renewed)
        statement = sql.SQL(
            "WITH lease AS (UPDATE session_writers SET until = %s WHERE session_id = %s AND writer = %s "
            "AND (%s::integer IS NULL OR EXISTS (SELECT FROM capture_tokens WHERE id = %s AND revoked_at IS NULL)) "
            "RETURNING 1), "
            "written_frames AS ({frames}), "
            "seen AS (UPDATE students SET last_seen = seen.ts FROM unnest(%s::integer[], %s::{ts}[]) AS seen(id, ts) "
            "WHERE students.id = seen.id AND EXISTS (SELECT FROM lease)), "
            "written_observations AS ({observations}), "
            "written_rollups AS ({rollups}) "
            "SELECT count(*) FROM lease"
        ).format(
            frames=inserted(frames, frame_columns),
            ts=sql.SQL(students.c.last_seen.type.compile(dialect=dialect)),
            observations=inserted(observations, observation_columns),
            rollups=upsert_statement(dialect, session_rollups, rollup_columns, KEY, SUMMED, rollup_rows),
        )
        return cls(statement.as_string(None), frame_columns, observation_columns, rollup_columns)


@dataclass(frozen=True)
class _Written:
    """A display name this recorder stored: the winning reading it came from, the name stored for it (the
    roster's name for that reading in a class, else the reading itself) and the roster student it linked."""

    read: str
    stored: str
    roster: RosterStudent | None


@dataclass
class SessionRecorder:
    """Writes FrameResults of one session. Open with `SessionRecorder.open`; usable as a context manager."""

    engine: Engine
    session_id: int
    session_name: str
    next_frame_index: int
    # The session's class (db.classes): a name read is linked to its roster; None: no class, no roster.
    class_id: int | None = None
    # Per student key: its row id and the last tile written, so unchanged tiles cost no UPDATE.
    _student_ids: dict[str, int] = field(default_factory=dict)
    _tiles: dict[str, Box | None] = field(default_factory=dict)
    # Student keys whose display name is stored: what this recorder wrote, followed as the capture's vote changes
    # its mind; None for a name it did not write (loaded, maybe a teacher's rename), which is never overwritten.
    _named: dict[str, _Written | None] = field(default_factory=dict)
    # This recorder's name in the session's lease (db.lease), and the thread renewing it.
    _writer: str = ""
    _heartbeat: Heartbeat | None = None
    # What the roll-ups count as attentive and negative: this process's configuration.
    _rollup_rule: RollupRule = field(default_factory=RollupRule.configured)

    @classmethod
    def open(
        cls,
        engine: Engine,
        session_name: str,
        source: str,
        teacher: str | None = None,
        class_name: str | None = None,
    ) -> SessionRecorder:
        """Start the session `session_name`, or continue it (after its last stored frame) if it exists.

        `teacher`: the dashboard user who owns the session; a continued session keeps the owner it has.
        `class_name`: the owner's class the session belongs to (db.classes), created when new; a continued
        session keeps the class it has.
        The recorder holds the session's lease (db.lease) until `close`; SessionBusyError, with nothing
        changed, while another capture holds it.
        """
        writer = new_writer()
        with reported_as("open session in", engine.url), write_transaction(engine) as connection:
            recorder = cls._start(connection, engine, session_name, source, teacher, writer)
            recorder.class_id = _join_class(connection, recorder.session_id, class_name)
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
        self.record_many([result])

    def record_many(
        self, results: Sequence[FrameResult], stages: Stages | None = None, token_id: int | None = None
    ) -> None:
        """Write the frames (in increasing order, after the last one stored) in one transaction: all or none.

        A school server writes a capture's batch this way (dashboard.ingest): the lease, the frames' rows, the
        students' last sighting and the roll-ups' upsert are paid once per batch instead of once per frame, so a
        server that falls behind catches up in larger and cheaper batches. `stages`: where the time went is added
        to it (db.stages). `token_id`: the capture token (db.tokens) the batch came with, checked in the same
        transaction: RevokedTokenError, with nothing written, once it is revoked."""
        previous = self.next_frame_index - 1
        for result in results:
            if result.frame_index <= previous:
                raise ValueError(
                    f"frame {result.frame_index} is already recorded in session {self.session_name!r}; "
                    f"the next frame index is {previous + 1}"
                )
            if result.timestamp.utcoffset() is None:
                raise ValueError(f"frame {result.frame_index}: timestamp {result.timestamp} has no timezone")
            previous = result.frame_index
        if not results:
            return
        stages = Stages() if stages is None else stages
        # Built before the transaction so a malformed observation fails before anything is written.
        with stages.stage("rows"):
            observation_rows = [[self._observation_row(o, result) for o in result.observations] for result in results]
        # The caches are worked on as the batch goes (a student new in its first frame is known in the next) and
        # put back if it fails: a failed batch leaves them as the database is.
        kept = dict(self._student_ids), dict(self._tiles), dict(self._named)
        try:
            with reported_as("record a frame in", self.engine.url):
                if self.engine.dialect.name == "postgresql" and self._students_unchanged(results, observation_rows):
                    self._write_at_once(results, observation_rows, stages, token_id)
                else:
                    self._write_in_steps(results, observation_rows, stages, token_id)
        except BaseException:
            self._student_ids, self._tiles, self._named = kept
            raise
        self.next_frame_index = results[-1].frame_index + 1

    def _write_in_steps(
        self,
        results: Sequence[FrameResult],
        observation_rows: list[list[dict[str, Any]]],
        stages: Stages,
        token_id: int | None,
    ) -> None:
        """record_many's transaction, a statement at a time: any batch, on any database."""
        with stages.stage("connect"):
            connection = self.engine.connect()
        with connection:
            transaction = connection.begin()
            with stages.stage("lease"):
                # First, so a frame is never written by a capture that has lost the session to another, or by a
                # token revoked meanwhile.
                renew(connection, self.session_id, self._writer)
                if token_id is not None:
                    require_live_token(connection, token_id)
            with stages.stage("frames"):
                connection.execute(insert(frames), [self._frame_row(result) for result in results])
            with stages.stage("students"):
                last_seen: dict[str, datetime] = {}
                for result, rows in zip(results, observation_rows, strict=True):
                    self._add_students(connection, result, rows)
                    last_seen.update(dict.fromkeys(_latest_per_student(result.observations), result.timestamp))
                self._update_last_seen(connection, last_seen)
            written = [row for rows in observation_rows for row in rows]
            with stages.stage("observations"):
                insert_rows(connection, observations, written)
            with stages.stage("rollups"):
                if written:
                    add_frame(connection, self._rollup_rule, self.session_id, written)
            with stages.stage("commit"):
                transaction.commit()

    def _students_unchanged(self, results: Sequence[FrameResult], observation_rows: list[list[dict[str, Any]]]) -> bool:
        """Whether the batch has observations and changes no student but their last sighting: nobody new, no tile
        moved, no name read or changed by the vote (what _add_students writes). Mostly so, after a class's first
        frames."""
        if not any(observation_rows):
            return False
        for result in results:
            for key, o in _latest_per_student(result.observations).items():
                if key not in self._student_ids or (o.tile is not None and o.tile != self._tiles[key]):
                    return False
            if any(self._name_changes(key, name, {}) for key, name in result.student_names.items()):
                return False
        return True

    def _write_at_once(
        self,
        results: Sequence[FrameResult],
        observation_rows: list[list[dict[str, Any]]],
        stages: Stages,
        token_id: int | None,
    ) -> None:
        """record_many's transaction as one PostgreSQL statement (_AtOnce), for a batch whose students are all
        known and unchanged: one round trip to the server, its own transaction."""
        with stages.stage("rows"):
            written = [row for rows in observation_rows for row in rows]
            for result, rows in zip(results, observation_rows, strict=True):
                for row, o in zip(rows, result.observations, strict=True):
                    row["student_id"] = self._student_ids[o.student_key]
            last_seen = {
                self._student_ids[key]: result.timestamp
                for result in results
                for key in _latest_per_student(result.observations)
            }
            frame_rows = [self._frame_row(result) for result in results]
            rollup_rows = added_rows(self._rollup_rule, self.session_id, written)
            at_once = _AtOnce.of(self.engine.dialect, tuple(frame_rows[0]), tuple(written[0]), tuple(rollup_rows[0]))
            parameters = [
                datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS),
                self.session_id,
                self._writer,
                token_id,
                token_id,
                *column_arrays(frame_rows, at_once.frame_columns),
                array_literal(list(last_seen)),
                array_literal(list(last_seen.values())),
                *column_arrays(written, at_once.observation_columns),
                *column_arrays(rollup_rows, at_once.rollup_columns),
            ]
        with stages.stage("connect"):
            connection = self.engine.connect()
        with connection:
            # Autocommit: the one statement is the transaction, so no BEGIN or COMMIT costs another round trip.
            connection.execution_options(isolation_level="AUTOCOMMIT")
            with stages.stage("write"):
                renewed = connection.exec_driver_sql(at_once.text, tuple(parameters)).scalar_one()
            if renewed == 0:
                # Nothing was written: say why.
                with stages.stage("lease"):
                    if token_id is not None:
                        require_live_token(connection, token_id)
                    renew(connection, self.session_id, self._writer)  # LeaseLostError, autocommitted
                raise DatabaseError("the session's lease was taken and given back while this batch was written: retry")

    def _frame_row(self, result: FrameResult) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "frame_index": result.frame_index,
            "ts": result.timestamp,
            "faces": result.faces,
            "processing_ms": float(result.processing_ms),
        }

    def _add_students(self, connection: Connection, result: FrameResult, rows: list[dict[str, Any]]) -> None:
        """The frame's new students inserted, moved tiles and new or changed names stored, and its rows'
        `student_id` set; the caches follow."""
        latest = _latest_per_student(result.observations)
        names, roster = self._on_roster(connection, latest, result.student_names)
        self._move_tiles(connection, latest)
        self._name_known_students(connection, result.student_names, names, roster)
        new = self._insert_new_students(connection, latest, names, roster, result.timestamp)
        self._named.update(
            {key: _Written(result.student_names[key], names[key], roster.get(key)) for key in new if key in names}
        )
        self._student_ids |= new
        for row, o in zip(rows, result.observations, strict=True):
            row["student_id"] = self._student_ids[o.student_key]
        self._tiles.update({key: _known_tile(o, self._tiles.get(key)) for key, o in latest.items()})

    def join_class(self, class_name: str) -> None:
        """Put the session, if it has no class yet, in its owner's class `class_name` (created when new)."""
        with reported_as("join a class in", self.engine.url), write_transaction(self.engine) as connection:
            self.class_id = _join_class(connection, self.session_id, class_name)

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
                self._named[row.key] = None
            self._tiles[row.key] = None if row.tile_x is None else Box(row.tile_x, row.tile_y, row.tile_w, row.tile_h)

    def _on_roster(
        self, connection: Connection, latest: dict[str, Observation], read: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, RosterStudent]]:
        """The names to store for the students whose name is new or changed by the vote (_name_changes), as the
        class's roster has them (a reading a teacher corrected: the corrected name), and their roster students by
        key: a student is looked up once per name that wins their vote."""
        names = {key: name for key, name in read.items() if self._name_changes(key, name, latest)}
        if self.class_id is None:
            return names, {}
        roster = {}
        for key, name in names.items():
            found = roster_student(connection, self.class_id, name)
            if found is not None:
                names[key] = found.display_name
                roster[key] = found
        return names, roster

    def _insert_new_students(
        self,
        connection: Connection,
        latest: dict[str, Observation],
        names: dict[str, str],
        roster: dict[str, RosterStudent],
        ts: datetime,
    ) -> dict[str, int]:
        rows = [
            {
                "session_id": self.session_id,
                "key": key,
                "display_name": names.get(key),
                "class_student_id": _roster_id(roster.get(key)),
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

    def _update_last_seen(self, connection: Connection, last_seen: dict[str, datetime]) -> None:
        """Each student's last sighting: one UPDATE per distinct time (mostly one, the batch's last frame)."""
        by_time: dict[datetime, list[int]] = {}
        for key, ts in last_seen.items():
            by_time.setdefault(ts, []).append(self._student_ids[key])
        for ts, ids in by_time.items():
            connection.execute(_LAST_SEEN, {"ts": ts, "ids": ids})

    def _move_tiles(self, connection: Connection, latest: dict[str, Observation]) -> None:
        # A tile moves only when the gallery re-lays out; a face without a tile keeps its last one. Students stored
        # before this frame only: a new one is inserted with its tile.
        moved = [
            {"student": self._student_ids[key], **_tile_values(o.tile)}
            for key, o in latest.items()
            if key in self._tiles and o.tile is not None and o.tile != self._tiles[key]
        ]
        if moved:
            connection.execute(
                update(students)
                .where(students.c.id == bindparam("student"))
                .values({name: bindparam(name) for name in TILE_COLUMNS}),
                moved,
            )

    def _name_changes(self, key: str, name: str, latest: dict[str, Observation]) -> bool:
        """Whether `name`, the capture's winning name for `key`, is to be stored: a student seen now or stored
        before, not named yet or named by this recorder with another winning reading."""
        if key not in latest and key not in self._student_ids:
            return False
        if key not in self._named:
            return True
        written = self._named[key]
        return written is not None and written.read != name

    def _name_known_students(
        self, connection: Connection, read: dict[str, str], names: dict[str, str], roster: dict[str, RosterStudent]
    ) -> None:
        """Store a known student's new or changed name, with their roster student, only over the name this recorder
        stored before (compare and set): a teacher's rename made meanwhile (dashboard, `db students rename`),
        which links the roster itself, is kept, and the student is then left to it. A statement per change: a
        student's name changes a few times a session at most."""
        for key, name in names.items():
            if key not in self._student_ids:
                continue
            before = self._named.get(key)
            changed = connection.execute(
                update(students)
                .where(
                    students.c.id == self._student_ids[key],
                    students.c.display_name.is_not_distinct_from(None if before is None else before.stored),
                )
                .values(display_name=name, class_student_id=_roster_id(roster.get(key)))
            ).rowcount
            if changed:
                self._named[key] = _Written(read[key], name, roster.get(key))
                overruled, meant = (None if before is None else before.roster), roster.get(key)
            else:
                # A teacher's rename came first: the student is theirs to name from now on.
                self._named[key] = None
                overruled, meant = roster.get(key), None
            # A roster student added for a reading that is nobody's name any more goes again.
            if overruled is not None and overruled.added and self.class_id is not None:
                overrule_reading(connection, self.class_id, overruled.id, _roster_id(meant))

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


def _join_class(connection: Connection, session_id: int, class_name: str | None) -> int | None:
    """Put a session without a class in its owner's class `class_name`; the session's class after it."""
    if class_name is not None and session_class(connection, session_id) is None:
        owner = connection.scalar(select(sessions.c.teacher).where(sessions.c.id == session_id))
        class_id = class_for(connection, class_name, owner)
        connection.execute(update(sessions).where(sessions.c.id == session_id).values(class_id=class_id))
    return session_class(connection, session_id)


def _next_frame_index(connection: Connection, session_id: int) -> int:
    last = connection.scalar(select(func.max(frames.c.frame_index)).where(frames.c.session_id == session_id))
    return 0 if last is None else last + 1


def _latest_per_student(found: Sequence[Observation]) -> dict[str, Observation]:
    return {o.student_key: o for o in found}


def _roster_id(found: RosterStudent | None) -> int | None:
    return None if found is None else found.id


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
