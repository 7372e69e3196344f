"""The read-only Dash dashboard: live class view, sessions list and session reports (`python -m dashboard`).

app (factory), layout (pages), callbacks (URL routing, live refresh, downloads), live (incremental
refresh state), figures (every chart), theme (emotion colours), formatting, ids (stable component ids).
"""
