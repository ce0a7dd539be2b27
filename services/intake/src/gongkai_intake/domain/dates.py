"""Deadlines and "today" are Asia/Shanghai calendar dates; timestamps are UTC.

The helper lives in ``gongkai.calendar.local``; this name stays only because ``app.py`` still
imports it from here (point app.py at ``gongkai.calendar`` and delete this module).
"""

from __future__ import annotations

from gongkai.calendar.local import local_date as local_date
