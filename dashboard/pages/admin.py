"""The admin page: users (add with the password policy of db.users, change a role, remove: their sessions go to
the admins, as `python -m dashboard users remove` does) and capture tokens (issue one to a user, shown once;
list; revoke), the same operations as the `users` and `tokens` commands. Every callback answers admins only
(dashboard.access.admin_only) and goes through Dash's callback requests, so the app's CSRF and same-origin
checks (dashboard.auth) hold for each; every action says in words what it did, or why it did nothing.

An admin cannot remove or demote themselves here: the page would lock them out mid-action, and a school must
keep an admin. Another admin, or the command line, can.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dash import Dash, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

from dashboard.access import admin_only
from dashboard.formatting import local_time
from db.errors import DatabaseError
from db.tokens import CaptureToken, TokenError, issue_token, list_tokens, revoke_token
from db.users import Role, User, UserError, add_user, list_users, remove_user, set_role

USERS_TABLE = "admin-users"
ADD_NAME = "admin-add-name"
ADD_ROLE = "admin-add-role"
ADD_PASSWORD = "admin-add-password"
ADD_BUTTON = "admin-add-button"
ROLE_USER = "admin-role-user"
ROLE_VALUE = "admin-role-value"
ROLE_BUTTON = "admin-role-button"
REMOVE_USER = "admin-remove-user"
REMOVE_BUTTON = "admin-remove-button"
USER_MESSAGE = "admin-user-message"
TOKENS_TABLE = "admin-tokens"
ISSUE_USER = "admin-issue-user"
ISSUE_BUTTON = "admin-issue-button"
REVOKE_TOKEN = "admin-revoke-token"
REVOKE_BUTTON = "admin-revoke-button"
TOKEN_MESSAGE = "admin-token-message"
NEW_TOKEN = "admin-new-token"  # the token just issued, shown this once
# Options typed as Dash declares them, so a misspelt key fails the type check, not silently in the browser.
Choices = list[dcc.Dropdown.Options]
ROLE_OPTIONS: list[dcc.RadioItems.Options] = [{"label": role.value, "value": role.value} for role in Role]


@dataclass(frozen=True)
class UserAnswer:
    """What the users card shows after an action: its message, the table, and every user list's options."""

    message: str
    table: html.Table
    names: Choices

    def outputs(self) -> tuple[str, html.Table, Choices, Choices, Choices]:
        return self.message, self.table, self.names, self.names, self.names


@dataclass(frozen=True)
class TokenAnswer:
    message: str
    new_token: str  # "" unless one was just issued
    table: html.Table
    live: Choices  # the revoke list's options: live tokens

    def outputs(self) -> tuple[str, str, html.Table, Choices]:
        return self.message, self.new_token, self.table, self.live


def register(app: Dash, engine: Engine) -> None:
    app.callback(
        Output(USER_MESSAGE, "children"),
        Output(USERS_TABLE, "children"),
        Output(ROLE_USER, "options"),
        Output(REMOVE_USER, "options"),
        Output(ISSUE_USER, "options"),
        Output(ADD_PASSWORD, "value"),
        Output(ADD_NAME, "value"),
        Input(ADD_BUTTON, "n_clicks"),
        Input(ROLE_BUTTON, "n_clicks"),
        Input(REMOVE_BUTTON, "n_clicks"),
        State(ADD_NAME, "value"),
        State(ADD_ROLE, "value"),
        State(ADD_PASSWORD, "value"),
        State(ROLE_USER, "value"),
        State(ROLE_VALUE, "value"),
        State(REMOVE_USER, "value"),
        prevent_initial_call=True,
    )(lambda *values: _user_outputs(engine, *values[3:]))
    app.callback(
        Output(TOKEN_MESSAGE, "children"),
        Output(NEW_TOKEN, "children"),
        Output(TOKENS_TABLE, "children"),
        Output(REVOKE_TOKEN, "options"),
        Input(ISSUE_BUTTON, "n_clicks"),
        Input(REVOKE_BUTTON, "n_clicks"),
        State(ISSUE_USER, "value"),
        State(REVOKE_TOKEN, "value"),
        prevent_initial_call=True,
    )(lambda _issue, _revoke, teacher, token_id: token_action(engine, _clicked(), teacher, token_id).outputs())


def _clicked() -> str:
    triggered = callback_context.triggered_id
    if not isinstance(triggered, str):
        raise PreventUpdate
    return triggered


def _user_outputs(engine: Engine, *fields: Any) -> tuple[Any, ...]:
    # The password field is emptied after every action (a password must not stay on screen), the name field
    # once the user is added.
    answer = user_action(engine, _clicked(), *fields)
    return (*answer.outputs(), "", "" if answer.message.startswith("Added ") else no_update)


def layout(engine: Engine) -> html.Div:
    users, tokens = list_users(engine), list_tokens(engine)
    names = _name_options(users)
    return html.Div(
        [
            html.H1("Users and capture tokens"),
            html.P(
                [
                    "Who may sign in, as what, and the tokens with which teachers' captures send to this server (as ",
                    html.Code("python -m dashboard users"),
                    " and ",
                    html.Code("tokens"),
                    " do). ",
                    dcc.Link("Back to the school view", href="/school"),
                ],
                className="subtitle",
            ),
            html.Div(
                [
                    html.H2("Users"),
                    html.Div(users_table(users), id=USERS_TABLE, className="table-scroll"),
                    html.Div(
                        [
                            html.Strong("Add"),
                            dcc.Input(id=ADD_NAME, placeholder="user name", autoComplete="off"),
                            _role_choice(ADD_ROLE),
                            dcc.Input(
                                id=ADD_PASSWORD,
                                type="password",
                                placeholder="password (10+ characters)",
                                autoComplete="new-password",
                            ),
                            html.Button("Add user", id=ADD_BUTTON),
                        ],
                        className="fix-row",
                    ),
                    html.Div(
                        [
                            html.Strong("Change role"),
                            dcc.Dropdown(id=ROLE_USER, options=names, placeholder="user", className="choice"),
                            _role_choice(ROLE_VALUE),
                            html.Button("Change role", id=ROLE_BUTTON),
                        ],
                        className="fix-row",
                    ),
                    html.Div(
                        [
                            html.Strong("Remove"),
                            dcc.Dropdown(id=REMOVE_USER, options=names, placeholder="user", className="choice"),
                            html.Button("Remove user", id=REMOVE_BUTTON),
                            html.Span("their sessions stay, seen by admins only", className="absent"),
                        ],
                        className="fix-row",
                    ),
                    html.P(id=USER_MESSAGE, role="status"),
                ],
                className="card",
            ),
            html.Div(
                [
                    html.H2("Capture tokens"),
                    html.Div(tokens_table(tokens), id=TOKENS_TABLE, className="table-scroll"),
                    html.Div(
                        [
                            html.Strong("Issue"),
                            dcc.Dropdown(id=ISSUE_USER, options=names, placeholder="to user", className="choice"),
                            html.Button("Issue token", id=ISSUE_BUTTON),
                        ],
                        className="fix-row",
                    ),
                    html.Div(
                        [
                            html.Strong("Revoke"),
                            dcc.Dropdown(
                                id=REVOKE_TOKEN, options=_live_options(tokens), placeholder="token", className="choice"
                            ),
                            html.Button("Revoke token", id=REVOKE_BUTTON),
                        ],
                        className="fix-row",
                    ),
                    html.P(id=TOKEN_MESSAGE, role="status"),
                    # Shown once, in full and selectable: the admin copies it to the teacher's machine.
                    html.Pre(
                        id=NEW_TOKEN,
                        style={"fontSize": "15px", "userSelect": "all", "whiteSpace": "pre-wrap", "margin": 0},
                    ),
                ],
                className="card",
            ),
        ]
    )


def _role_choice(component_id: str) -> dcc.RadioItems:
    # The row's inputs are wide text fields (assets/style.css); a radio button keeps its own width.
    return dcc.RadioItems(
        id=component_id,
        options=ROLE_OPTIONS,
        value=Role.TEACHER.value,
        inline=True,
        inputStyle={"minWidth": 0, "marginRight": "4px"},
        labelStyle={"marginRight": "12px"},
    )


def user_action(
    engine: Engine,
    button: str,
    name: str | None,
    role: str | None,
    password: str | None,
    role_user: str | None,
    new_role: str | None,
    removed: str | None,
) -> UserAnswer:
    """Add, change the role of, or remove a user, as the signed-in admin; the answer names what was done."""
    admin = admin_only()
    try:
        message = _do_user_action(engine, admin, button, name, role, password, role_user, new_role, removed)
    except (UserError, DatabaseError) as error:
        message = f"Nothing changed: {error}."
    users = list_users(engine)
    return UserAnswer(message, users_table(users), _name_options(users))


def _do_user_action(
    engine: Engine,
    admin: User,
    button: str,
    name: str | None,
    role: str | None,
    password: str | None,
    role_user: str | None,
    new_role: str | None,
    removed: str | None,
) -> str:
    match button:
        case "admin-add-button":
            if not name or not password:
                raise UserError("give a user name and a password")
            user = add_user(engine, name.strip(), Role(_role(role)), password)
            return f"Added {user.name} as {user.role}. They accept the purpose notice at their first sign-in."
        case "admin-role-button":
            target = _other_user(admin, role_user, "change your own role")
            set_role(engine, target, Role(_role(new_role)))
            return f"{target} is now {new_role}, and has been signed out everywhere."
        case "admin-remove-button":
            target = _other_user(admin, removed, "remove yourself")
            handed_over = remove_user(engine, target)
            return (
                f"Removed {target}: they can no longer sign in, their capture tokens no longer work, and their "
                f"{handed_over} session(s) are now seen by admins only."
            )
    raise PreventUpdate


def _role(value: str | None) -> str:
    if value not in {role.value for role in Role}:
        raise UserError(f"choose a role ({', '.join(role.value for role in Role)})")
    return value


def _other_user(admin: User, name: str | None, what: str) -> str:
    if not name:
        raise UserError("choose a user")
    if name == admin.name:
        raise UserError(f"you cannot {what} here; another admin, or `python -m dashboard users`, can")
    return name


def token_action(engine: Engine, button: str, teacher: str | None, token_id: object) -> TokenAnswer:
    """Issue a token to `teacher` or revoke token `token_id`, as the signed-in admin."""
    admin_only()
    new_token = ""
    try:
        match button:
            case "admin-issue-button":
                if not teacher:
                    raise TokenError("choose the user the token is for")
                record, new_token = issue_token(engine, teacher)
                message = (
                    f"Issued token {record.id} to {record.teacher}. It is shown below only now: put it in a file "
                    "readable by the teacher alone on their capture machine (capture --token-file), or in "
                    "CLASSPULSE_TOKEN. This server keeps only its hash."
                )
            case "admin-revoke-button":
                if not isinstance(token_id, int) or isinstance(token_id, bool):
                    raise TokenError("choose a token to revoke")
                record, was_live = revoke_token(engine, token_id)
                message = (
                    f"Revoked token {record.id} of {record.teacher}: the server refuses it from its next request."
                    if was_live
                    else f"Token {record.id} of {record.teacher} was already revoked."
                )
            case _:
                raise PreventUpdate
    except (TokenError, DatabaseError) as error:
        message = f"Nothing changed: {error}."
    tokens = list_tokens(engine)
    return TokenAnswer(message, new_token, tokens_table(tokens), _live_options(tokens))


def users_table(users: list[User]) -> html.Table:
    header = html.Tr([html.Th(label) for label in ("User", "Role", "Added", "Notice accepted")])
    rows = [
        html.Tr(
            [
                html.Td(user.name),
                html.Td(user.role.value),
                html.Td(local_time(user.created_at, with_date=True)),
                html.Td("not yet" if user.notice_accepted_at is None else local_time(user.notice_accepted_at, True)),
            ]
        )
        for user in users
    ]
    return html.Table([html.Thead(header), html.Tbody(rows)], className="table")


def tokens_table(tokens: list[CaptureToken]) -> html.Table:
    header = html.Tr([html.Th(label) for label in ("Token", "User", "Issued", "State")])
    rows = [
        html.Tr(
            [
                html.Td(str(token.id), className="number"),
                html.Td(token.teacher),
                html.Td(local_time(token.created_at, with_date=True)),
                html.Td(
                    "live" if token.revoked_at is None else f"revoked {local_time(token.revoked_at, with_date=True)}"
                ),
            ]
        )
        for token in tokens
    ]
    if not rows:
        rows = [html.Tr(html.Td("No capture token has been issued yet.", colSpan=4, className="absent"))]
    return html.Table([html.Thead(header), html.Tbody(rows)], className="table")


def _name_options(users: list[User]) -> Choices:
    return [{"label": f"{user.name} ({user.role.value})", "value": user.name} for user in users]


def _live_options(tokens: list[CaptureToken]) -> Choices:
    return [
        {
            "label": f"{token.id}: {token.teacher}, issued {local_time(token.created_at, with_date=True)}",
            "value": token.id,
        }
        for token in tokens
        if token.revoked_at is None
    ]
