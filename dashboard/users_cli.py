"""`python -m dashboard users add|list|remove|passwd|role`: manage who may sign in to the dashboard, and as what."""

from __future__ import annotations

import argparse
import getpass
import sys

from db.arguments import is_text
from db.engine import DEFAULT_URL
from db.errors import DatabaseError
from db.migrate import upgrade
from db.users import Role, UserError, add_user, list_users, remove_user, set_password, set_role

PROG = "python -m dashboard users"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", default=DEFAULT_URL, help="SQLAlchemy URL (default: the embedded SQLite file)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", parents=[database], help="add a user")
    add.add_argument("name")
    commands.add_parser("list", parents=[database], help="list the users and their roles")
    remove = commands.add_parser(
        "remove", parents=[database], help="remove a user (their sessions stay, for admins only)"
    )
    remove.add_argument("name")
    passwd = commands.add_parser("passwd", parents=[database], help="set a new password (signs them out everywhere)")
    passwd.add_argument("name")
    change_role = commands.add_parser(
        "role", parents=[database], help="change a user's role (signs them out everywhere)"
    )
    change_role.add_argument("name")
    for command in (add, change_role):
        command.add_argument("--role", choices=[role.value for role in Role], required=True)
    for command in (add, passwd):
        command.add_argument(
            "--password-stdin", action="store_true", help="read the password from the first line of stdin (scripts)"
        )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        engine = upgrade(args.db)
        match args.command:
            case "add":
                user = add_user(engine, args.name, Role(args.role), read_password(args.password_stdin))
                print(f"added {user.name} ({user.role})")
            case "list":
                for user in list_users(engine):
                    print(f"{user.name}\t{user.role}\tcreated {user.created_at:%Y-%m-%d %H:%M} UTC")
            case "remove":
                handed_over = remove_user(engine, args.name)
                print(f"removed {args.name}; their {handed_over} session(s) are now seen by admins only")
            case "passwd":
                set_password(engine, args.name, read_password(args.password_stdin))
                print(f"changed the password of {args.name}")
            case "role":
                set_role(engine, args.name, Role(args.role))
                print(f"{args.name} is now {args.role}")
    except (DatabaseError, UserError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0


def read_password(from_stdin: bool) -> str:
    """From stdin's first line, or asked twice on the terminal; never from the command line (shell history, ps)."""
    if not from_stdin and not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password on; pipe it in with --password-stdin")
    try:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Again: ") != password:
                raise UserError("the two passwords differ")
    except UnicodeDecodeError:  # a strict locale
        raise UserError("the password is not valid UTF-8 text") from None
    if not is_text(password):  # undecodable bytes kept as surrogates (a UTF-8 or C locale)
        raise UserError("the password is not valid UTF-8 text")
    return password
