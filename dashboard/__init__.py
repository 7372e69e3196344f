"""The Dash dashboard, behind a sign-in: live class view, sessions list and session reports (`python -m dashboard`).

app (factory), router (the frame around every page, URL -> page), pages/ (one module per page: its layout
and its callbacks), components (pieces several pages show), checks (the session a page's store names, checked),
figures (every chart), theme (emotion colours), formatting, ids (stable component ids), report_cache,
auth (sign-in, sign-out, the purpose notice), access (who sees which session), users_cli (`users` commands).
The live tables it draws come from analytics.live.
It reads the class data and writes only its users table.
"""
