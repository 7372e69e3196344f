"""The database: schema, migrations, connections, the recorder (write side) and queries (read side).

All SQL in the project lives here. Callers import the submodules they need:
`db.engine.connect`, `db.migrate.upgrade`, `db.recorder.SessionRecorder` (capture's `capture.buffer.BufferedWriter`
carries it through an outage), `db.queries`, `db.users` (dashboard accounts), `db.purge` (retention,
also `python -m db purge`).
"""
