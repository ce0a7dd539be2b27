"""``gongkai audit trail POST``: a post's chain of custody, read from the log by subject.

Apart from the other inspectors' tools (``commands``) so that it imports only what the read
needs: the event log, the read by subject (``adapters.trail``) and the fold. ``commands``
brings the console's views, the HTML report and SQLAlchemy's statements with it; they cost the
command more than a second before it read anything. The names every inspector's table prints
(``unit_name``, ``column_name``) and the connection every inspector's tool opens (``run``) are
here, for the same reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable

import nats.errors

from gongkai.eventlog import EventLog, EventLogError
from gongkai.runtime.settings import Settings
from gongkai.trust import credentials
from gongkai_accountability.adapters.trail import read_trail
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.domain.tables import POST, UNIT, Step


def nats_url(args: argparse.Namespace) -> str:
    return args.nats_url or Settings.from_env().nats_url or "nats://127.0.0.1:4222"


def run(args: argparse.Namespace, body: Callable[[EventLog], Awaitable[int]]) -> int:
    """Connect as the inspector, run ``body``, close; a connection failure is one line."""

    async def main() -> int:
        url = nats_url(args)
        try:
            # read-only: the inspector's credentials (--creds, $GONGKAI_NATS_CREDS, a password
            # user, or <data-dir>/credentials/inspector.nk)
            evlog = await credentials.connect_tool(url, credentials.for_tool(args, "inspector"))
        except Exception as exc:  # noqa: BLE001 - any connection failure is one message
            print(f"gongkai audit: cannot connect to NATS at {url}: {exc}", file=sys.stderr)
            return 1
        try:
            return await body(evlog)
        except (EventLogError, nats.errors.Error) as exc:
            # No log there (a server without the stream), the server went away, or a read was
            # refused mid-way (a NATS user without the read grants gets no answer): one line,
            # as a failed connection.
            print(f"gongkai audit: reading the log at {url} failed: {exc}", file=sys.stderr)
            return 1
        finally:
            await evlog.close()

    return asyncio.run(main())


def _detail(step: Step) -> str:
    """What a step of the trail decided, in the notice's words where it has them."""
    from gongkai.terminal import named
    from gongkai.vocabulary import DECISIONS, VIOLATION_KINDS, name_of

    parts = []
    if step.decision is not None:
        parts.append(name_of(DECISIONS, step.decision))
    for key, value in (
        ("opinion", step.opinion), ("publication_id", step.publication_id),
        ("reason", step.reason),
    ):
        if value:
            parts.append(f"{key}={value}")
    if step.kind is not None:
        parts.append(named(VIOLATION_KINDS.get(step.kind), step.kind))
    return " ".join(parts)


def cmd_trail(args: argparse.Namespace) -> int:
    async def body(evlog: EventLog) -> int:
        # By the post's subjects, accountability's read model (when at hand) the index of
        # what else names the post; else the whole log (adapters.trail).
        res = await read_trail(evlog, args.post, Settings.from_env().db_url("accountability"))
        post = res.rows.get(POST, args.post)
        if post is None:
            print(f"gongkai audit trail: no post {args.post!r} in the log", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(POST.encode_row(post), ensure_ascii=False, indent=2))
            return 0
        from gongkai.terminal import beijing, named, table
        from gongkai.vocabulary import ROLES, STEPS, name_of
        print(
            f"稿件 post {post.post_id}  {unit_name(res.rows, post.unit)}  "
            f"{column_name(post.column)}  《{post.title}》"
        )
        table(
            ["序号 seq", "时间 time", "环节 step", "人员 person", "摘要 digest", "详情 detail"],
            (
                [
                    s.seq,
                    beijing(s.at, seconds=True),
                    named(STEPS.get(s.what), s.what),
                    f"{s.person} ({name_of(ROLES, s.role)}, {s.unit})",
                    (s.digest or "")[:12],
                    _detail(s),
                ]
                for s in post.trail
            ),
        )
        return 0

    return run(args, body)


__all__ = ["cmd_trail", "nats_url", "run"]


def unit_name(rows: Rows, code: str) -> str:
    """A unit as the inspectors' tables print it: its name and code (the code alone when the
    log does not name it)."""
    from gongkai.terminal import named

    unit = rows.get(UNIT, code) if code else None
    return named(unit.name if unit else None, code)


def column_name(code: str) -> str:
    """A column as the inspectors' tables print it: its name in the catalog and its code."""
    from gongkai.rules import default_catalog
    from gongkai.terminal import named

    col = default_catalog().column(code)
    return named(col.zh if col else None, code)
