"""The frame around every page (navigation bar, sign-out, page slot) and the router that puts the page
of the URL in it: / and /live/<session> (dashboard.pages.live), /sessions (pages.sessions),
/report/<session> (pages.report), for admins /school (pages.school) and /admin (pages.admin), or a message
saying why there is nothing to show. A teacher asking for an admin page gets the answer for a page that does
not exist, and the navigation bar names those pages to admins only.

Each callback is a plain function of the engine and its inputs (tested directly); `register_callbacks`
wires the router and every page's callbacks to the app. Each callback serves the signed-in user only the
sessions they may see (dashboard.access); database problems become a message on the page, never an error page.
"""

from __future__ import annotations

from urllib.parse import unquote

from dash import Dash, Input, Output, dcc, html
from sqlalchemy import Engine

from dashboard import ids
from dashboard.access import current_user, is_admin, visible_session, visible_sessions, visible_summaries
from dashboard.components import ELSEWHERE, message_page, no_sessions_page
from dashboard.pages import admin, classes, classroom, live, report, school, sessions
from db.errors import DatabaseError
from db.queries import UnknownSessionError, session_summaries
from db.users import User

ADMIN_LINKS = "admin-links"  # the navigation bar's links to the admin pages, filled in for admins


def app_shell() -> html.Div:
    """The frame around every page: the URL, a navigation bar and the page slot."""
    return html.Div(
        [
            dcc.Location(id=ids.URL),
            html.Header(
                [
                    dcc.Link("ClassPulse", href="/", className="brand"),
                    html.Nav(
                        [
                            dcc.Link("Live class", href="/"),
                            dcc.Link("Sessions", href="/sessions"),
                            *classes.nav_links(),
                            *classroom.nav_links(),
                            html.Span(id=ADMIN_LINKS),
                        ]
                    ),
                    # A real form post (not a Dash callback): the server clears the session cookie. Its CSRF
                    # token is filled in as it is sent (assets/sign_out.js).
                    html.Form(
                        [
                            dcc.Input(type="hidden", name="csrf_token", value=""),
                            html.Button("Sign out", id=ids.SIGN_OUT),
                        ],
                        action="/logout",
                        method="POST",
                        className="sign-out",
                    ),
                ],
                className="topbar",
            ),
            html.Main(id=ids.PAGE, className="page"),
        ]
    )


def register_callbacks(app: Dash, engine: Engine) -> None:
    app.callback(Output(ids.PAGE, "children"), Input(ids.URL, "pathname"))(
        lambda pathname: render_page(engine, pathname, current_user())
    )
    app.callback(Output(ADMIN_LINKS, "children"), Input(ids.URL, "pathname"))(lambda _: admin_links(current_user()))
    for page in (live, sessions, report, school, admin, classroom, classes):
        page.register(app, engine)


def admin_links(viewer: User) -> list[dcc.Link]:
    if not is_admin(viewer):
        return []
    return [dcc.Link("School", href="/school"), dcc.Link("Users and tokens", href="/admin")]


def render_page(engine: Engine, pathname: str | None, viewer: User) -> html.Div:
    """The page for `pathname`: /, /live/<session>, /sessions, /report/<session>, or a helpful message.
    Only sessions `viewer` may see are shown or listed."""
    parts = [unquote(part) for part in (pathname or "/").strip("/").split("/") if part]
    try:
        match parts:
            case []:
                newest = visible_sessions(engine, viewer)
                if newest:
                    return live.layout(newest[0])
                return no_sessions_page() if is_admin(viewer) else sessions.no_own_sessions_page()
            case ["sessions"]:
                return sessions.layout(visible_summaries(session_summaries(engine), viewer))
            case ["live", name]:
                return live.layout(visible_session(engine, viewer, name))
            case ["report", name]:
                return report.session_report(engine, visible_session(engine, viewer, name))
            case ["school"] if is_admin(viewer):
                return school.layout()
            case ["admin"] if is_admin(viewer):
                return admin.layout(engine)
            case ["classroom"]:
                return classroom.layout(engine, viewer)
            case ["classes", *rest]:
                return classes.render(engine, rest, viewer)
    except UnknownSessionError as error:
        return message_page("Unknown session", f"{error}.", ELSEWHERE)
    except DatabaseError as error:
        return message_page("Cannot read the database", str(error))
    return message_page("Page not found", f"There is no page at {pathname}.", ELSEWHERE)
