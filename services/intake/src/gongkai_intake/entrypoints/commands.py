"""``gongkai people ...``, ``gongkai directory ...`` and ``gongkai import``: the operator's tools
(their arguments: ``cli``).

They append to the log directly (the operator has NATS access; there may be no office user yet
to call the HTTP API with). Errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats.js.errors

from gongkai import subjects
from gongkai.calendar import local_date
from gongkai.eventlog import EventLog, EventLogError
from gongkai.events import Actor
from gongkai.refusal import Refusal
from gongkai.runtime.clock import SystemClock
from gongkai.runtime.settings import Settings
from gongkai.terminal import Progress
from gongkai.tokens import new_token, token_hash, token_hint
from gongkai.trust import credentials
from gongkai_intake.adapters.directory_log import (
    DirectoryFileError,
    apply_directory,
    explain,
    issue_token_change,
    load_directory_file,
    person_tokens,
    revoke_tokens,
)
from gongkai_intake.adapters.history_import import (
    HistoryFileError,
    ImportReport,
    import_history,
    read_history_file,
)


class CliError(Exception):
    """One line for stderr, and exit status 1."""


def operator() -> Actor:
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    return Actor(person=f"operator:{user}"[:128], role="operator", unit="system")


def nats_url(args: argparse.Namespace) -> str:
    return args.nats_url or Settings.from_env().nats_url or "nats://127.0.0.1:4222"


async def with_intake_log(
    url: str, work: Callable[[EventLog], Awaitable[int]], args: argparse.Namespace | None = None
) -> int:
    """Connect as intake (the service that records these events) and run ``work``.

    Credentials: ``--creds``/``$GONGKAI_NATS_CREDS``, a password user from the environment, or
    the local data directory's ``credentials/intake.nk`` (gongkai.trust.credentials).
    """

    async def quiet(_: Exception) -> None:
        pass  # the failure is reported once, below

    try:
        auth = credentials.for_tool(args or argparse.Namespace(), "intake")
        options = auth.options()
    except credentials.CredentialsError as exc:
        raise CliError(str(exc)) from None
    try:
        # nats-py retries the first connect forever unless max_reconnect_attempts > 0.
        evlog = await EventLog.connect(
            url,
            connect_timeout=2,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            error_cb=quiet,
            keys=auth.keyring(),  # signs as intake with the data directory's key
            **options,
        )
    except Exception as exc:  # noqa: BLE001 - any connection failure is one line
        reason = str(exc) or type(exc).__name__
        raise CliError(f"cannot connect to NATS at {url}: {reason}") from None
    try:
        try:
            await evlog.js.stream_info(subjects.STREAM)
        except nats.js.errors.NotFoundError:
            raise CliError(
                f"no {subjects.STREAM} stream at {url}: start gongkai once to create it"
            ) from None
        return await work(evlog)
    finally:
        await evlog.close()


def run_tool(prog: str, coro: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return asyncio.run(coro())
    except CliError as exc:
        print(f"gongkai {prog}: {exc}", file=sys.stderr)
        return 1
    except Refusal as r:
        print(f"gongkai {prog}: {explain(r)}", file=sys.stderr)
        return 1
    except EventLogError as exc:
        print(f"gongkai {prog}: the log refused the change: {exc}", file=sys.stderr)
        return 1


def _stamp(at: object) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def cmd_token(args: argparse.Namespace) -> int:
    token = new_token()
    days = args.days if args.days is not None else Settings.from_env().token_lifetime_days
    if days < 1:
        print("gongkai people token: --days must be at least 1", file=sys.stderr)
        return 2

    async def work(evlog: EventLog) -> int:
        now = SystemClock().now()
        expires = now + timedelta(days=days)
        change = await issue_token_change(
            evlog,
            args.person,
            token_hash(token),
            token_hint(token),
            actor=operator(),
            now=now,
            today=local_date(now),
            command_id=f"token-{uuid.uuid4()}",
            expires_at=expires,
            replace=not args.keep_others,
        )
        replaced = (
            f"; replaced (revoked) {len(change.revoked)} earlier token(s): "
            + ", ".join(f"…{h}" for h in change.revoked)
            if change.revoked
            else ""
        )
        print(
            f"token …{token_hint(token)} for {args.person} recorded (sequence {change.sequence}), "
            f"valid until {_stamp(expires)}{replaced}. Only its hash is kept, so copy it now:",
            file=sys.stderr,
        )
        print(token)
        return 0

    return run_tool("people token", lambda: with_intake_log(nats_url(args), work, args))


def cmd_revoke(args: argparse.Namespace) -> int:
    async def work(evlog: EventLog) -> int:
        now = SystemClock().now()
        change = await revoke_tokens(
            evlog,
            args.person,
            args.token,
            actor=operator(),
            now=now,
            today=local_date(now),
            command_id=f"revoke-{uuid.uuid4()}",
        )
        if not change.revoked:
            print(f"{args.person} has no live token; nothing recorded")
            return 0
        print(
            f"revoked {len(change.revoked)} token(s) of {args.person}: "
            + ", ".join(f"…{h}" for h in change.revoked)
            + f" (sequence {change.sequence}); every service refuses them from now on"
        )
        return 0

    return run_tool("people revoke", lambda: with_intake_log(nats_url(args), work, args))


def cmd_tokens(args: argparse.Namespace) -> int:
    async def work(evlog: EventLog) -> int:
        live = await person_tokens(evlog, args.person, SystemClock().now())
        if not live:
            print(f"{args.person} has no live token")
            return 0
        print(f"{'token':<8} {'issued at':<21} expires at")
        for t in live:
            print(f"…{t.hint:<7} {_stamp(t.issued_at):<21} {_stamp(t.expires_at)}")
        return 0

    return run_tool("people tokens", lambda: with_intake_log(nats_url(args), work, args))


def cmd_load(args: argparse.Namespace) -> int:
    try:
        spec = load_directory_file(Path(args.file))
    except DirectoryFileError as exc:
        print(f"gongkai directory load: {exc}", file=sys.stderr)
        return 2

    async def work(evlog: EventLog) -> int:
        now = SystemClock().now()
        report = await apply_directory(
            evlog, spec, actor=operator(), now=now, today=local_date(now)
        )
        print(
            f"{len(spec.units)} units, {len(spec.people)} people in {args.file}; "
            f"{report.events} events recorded"
            + (f" ({', '.join(report.aggregates)})" if report.aggregates else " (up to date)")
        )
        return 0

    return run_tool("directory load", lambda: with_intake_log(nats_url(args), work, args))


def print_import_report(report: ImportReport, file: str) -> None:
    for err in report.refused:
        print(f"{file}:{err.line}: refused: {err.reason}", file=sys.stderr)
    print(
        f"{file}: {report.total} rows: {report.imported} imported, "
        f"{report.present} already present, {len(report.refused)} refused"
    )


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        rows = read_history_file(path, args.format)
    except HistoryFileError as exc:
        print(f"gongkai import: {exc}", file=sys.stderr)
        return 2

    async def work(evlog: EventLog) -> int:
        from gongkai.rules import default_catalog

        report = await import_history(
            evlog,
            rows,
            catalog=default_catalog(),
            actor=operator(),
            now=SystemClock().now(),
            progress=Progress("导入 import", quiet=args.quiet),
        )
        print_import_report(report, args.file)
        return 1 if report.refused else 0

    return run_tool("import", lambda: with_intake_log(nats_url(args), work, args))
