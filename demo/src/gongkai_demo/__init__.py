"""The demo county (文河县) and ``gongkai demo``: fictional people with public tokens, a scripted
story played over the platform's HTTP API, and helpers for tests. Never on a real deployment.

Intake owns the directory's events; this package uses intake and intake knows nothing of it.
"""
