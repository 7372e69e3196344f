"""`python -m dashboard tokens issue|list|revoke`: capture tokens are printed once, stored only hashed, refused once
revoked, and go with their user."""

from __future__ import annotations

from pathlib import Path

from db.migrate import upgrade
from db.tokens import hash_token, token_owner
from db.users import Role, add_user, remove_user
from tests.cli import assert_one_clear_line, run_module, sqlite_rows
from tests.dashboard_users import PASSWORD


def tokens(db: Path, *args: str) -> tuple[int, str, str]:
    result = run_module("dashboard", "tokens", *args, "--db", f"sqlite:///{db}")
    return result.returncode, result.stdout, result.stderr


def test_a_token_is_printed_once_stored_hashed_listed_and_refused_once_revoked(tmp_path: Path) -> None:
    db = tmp_path / "school.db"
    engine = upgrade(f"sqlite:///{db}")
    add_user(engine, "alice", Role.TEACHER, PASSWORD)

    code, token, message = tokens(db, "issue", "alice")
    token = token.strip()
    assert code == 0 and token.startswith("cpt_") and len(token) > 40, message
    assert "alice" in message and token not in message
    # Only the hash is in the database: no column of any row holds the token.
    assert sqlite_rows(db, "SELECT token_hash FROM capture_tokens") == [(hash_token(token),)]
    with engine.connect() as connection:
        dump = "\n".join(connection.connection.driver_connection.iterdump())
    assert token not in dump
    assert token_owner(engine, token) == "alice"
    assert token_owner(engine, token + "x") is None

    code, second, _ = tokens(db, "issue", "alice")
    assert code == 0 and second.strip() != token
    code, listing, _ = tokens(db, "list")
    lines = listing.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith("1\talice\tissued ") and lines[0].endswith("\tlive")
    assert token not in listing

    code, said, _ = tokens(db, "revoke", "1")
    assert (code, said.strip()) == (0, "token 1 of alice revoked")
    assert token_owner(engine, token) is None
    assert token_owner(engine, second.strip()) == "alice"  # the other token still works
    code, listing, _ = tokens(db, "list")
    assert "\trevoked " in listing.splitlines()[0] and listing.splitlines()[1].endswith("\tlive")
    code, said, _ = tokens(db, "revoke", "1")
    assert (code, said.strip()) == (0, "token 1 of alice was already revoked")


def test_a_removed_users_tokens_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "school.db"
    engine = upgrade(f"sqlite:///{db}")
    add_user(engine, "bob", Role.TEACHER, PASSWORD)
    code, token, _ = tokens(db, "issue", "bob")
    assert code == 0
    remove_user(engine, "bob")
    assert token_owner(engine, token.strip()) is None
    # A new account of the same name does not inherit the old account's tokens.
    add_user(engine, "bob", Role.TEACHER, PASSWORD)
    assert token_owner(engine, token.strip()) is None


def test_unknown_users_and_token_ids_are_one_clear_line(tmp_path: Path) -> None:
    db = tmp_path / "school.db"
    upgrade(f"sqlite:///{db}")
    assert_one_clear_line(run_module("dashboard", "tokens", "issue", "nobody", "--db", f"sqlite:///{db}"), "nobody")
    assert_one_clear_line(run_module("dashboard", "tokens", "revoke", "7", "--db", f"sqlite:///{db}"), "7")
    assert sqlite_rows(db, "SELECT count(*) FROM capture_tokens") == [(0,)]
