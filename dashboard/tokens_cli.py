"""`python -m dashboard tokens issue|list|revoke`: the capture tokens with which teachers' captures send frames to
this server (`python -m capture --server URL --token-file FILE`)."""

from __future__ import annotations

import argparse
import sys

from db.engine import DEFAULT_URL
from db.errors import DatabaseError
from db.migrate import upgrade
from db.tokens import CaptureToken, TokenError, issue_token, list_tokens, revoke_token

PROG = "python -m dashboard tokens"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser(
        "issue", parents=[database], help="issue a token to a user; it is printed once and stored only hashed"
    )
    issue.add_argument("teacher", help="the dashboard user whose sessions the token's captures write")
    commands.add_parser("list", parents=[database], help="list the tokens: id, teacher, issued, revoked")
    revoke = commands.add_parser("revoke", parents=[database], help="revoke a token: the server refuses it at once")
    revoke.add_argument("id", type=int, help="the token's id (see `tokens list`)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        engine = upgrade(args.db)
        match args.command:
            case "issue":
                record, token = issue_token(engine, args.teacher)
                # The token alone on stdout, so `... tokens issue NAME > FILE` writes the token file.
                print(token)
                print(
                    f"issued token {record.id} to {record.teacher}; it is shown only now: keep it in a file "
                    "readable by the teacher alone (capture --token-file) or in CLASSPULSE_TOKEN",
                    file=sys.stderr,
                )
            case "list":
                for record in list_tokens(engine):
                    print(_line(record))
            case "revoke":
                record, was_live = revoke_token(engine, args.id)
                state = "revoked" if was_live else "was already revoked"
                print(f"token {record.id} of {record.teacher} {state}")
    except (DatabaseError, TokenError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0


def _line(record: CaptureToken) -> str:
    state = "live" if record.revoked_at is None else f"revoked {record.revoked_at:%Y-%m-%d %H:%M} UTC"
    return f"{record.id}\t{record.teacher}\tissued {record.created_at:%Y-%m-%d %H:%M} UTC\t{state}"
