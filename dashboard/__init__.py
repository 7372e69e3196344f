"""The Dash dashboard, behind a sign-in: live class view, sessions list and session reports (`python -m dashboard`).

app (factory), layout (pages), callbacks (URL routing, live refresh, downloads), live (incremental
refresh state), figures (every chart), theme (emotion colours), formatting, ids (stable component ids),
auth (sign-in, sign-out, the purpose notice), access (who sees which session), users_cli (`users` commands).
It reads the class data and writes only its users table.
"""
