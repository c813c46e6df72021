"""Collector inbox, admin policy editor and dashboard (server-rendered, Jinja2 + HTMX)."""
