#!/usr/bin/env bash
# The main job: the capture process and the dashboard together, on the embedded SQLite database
# (or DB=<SQLAlchemy URL>). SOURCE picks what to watch (default: the primary screen; a video file,
# an image folder, webcam:0, screen:X,Y,W,H work too). Ctrl-C stops both; capture commits every
# analysed frame first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SOURCE=${SOURCE:-screen}
PORT=${PORT:-8050}
db_args=()
[[ -n ${DB:-} ]] && db_args=(--db "$DB")

if [[ $SOURCE == screen* && -z ${DISPLAY:-} ]]; then
    echo "run: no display to capture (DISPLAY is not set). Run this on the teacher's desktop, or give a" >&2
    echo "     recording: make run SOURCE=path/to/class.mp4 (or a folder of gallery screenshots)." >&2
    exit 2
fi

# The dashboard needs a sign-in: on the first run, make the operator's admin account (asks for a password).
if [[ -z $(.venv/bin/python -m dashboard users list "${db_args[@]}") ]]; then
    echo "run: nobody can sign in to the dashboard yet; creating the admin account '${ADMIN:-admin}'" >&2
    .venv/bin/python -m dashboard users add "${ADMIN:-admin}" --role admin "${db_args[@]}" ||
        echo "run: no account made; add one later: .venv/bin/python -m dashboard users add NAME --role admin" >&2
fi

.venv/bin/python -m dashboard "${db_args[@]}" --port "$PORT" &
dashboard_pid=$!
trap 'kill "$dashboard_pid" 2>/dev/null || true' EXIT
echo "run: dashboard on http://127.0.0.1:$PORT — capturing $SOURCE (Ctrl-C to stop)" >&2

.venv/bin/python -m capture --source "$SOURCE" "${db_args[@]}" ${SESSION:+--session "$SESSION"} \
    ${TEACHER:+--teacher "$TEACHER"} ${RETAIN_DAYS:+--retain-days "$RETAIN_DAYS"}
# A finite source (a recording) ends by itself; keep the dashboard up for the after-class review.
if [[ $SOURCE != screen* && $SOURCE != webcam* ]]; then
    echo "run: capture finished; the dashboard stays up until Ctrl-C" >&2
    wait "$dashboard_pid"
fi
