"""The ``gongkai`` command line.

Built-in commands: ``up``, ``service``, ``events``, ``db``, ``calendar``. Service packages add their
own (``people``, ``freshness``, ``audit``, ``demo`` ...) through the ``gongkai.cli``
entry-point group: each entry is a ``register(subparsers)`` function, which may return a
function to call with the same subparsers once every package has registered.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, TypeVar

from gongkai import subjects
from gongkai.calendar import cli as calendar_cli
from gongkai.runtime.settings import Settings
from gongkai.trust import cli as keys_cli
from gongkai.trust import credentials, matrix

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from gongkai.eventlog import EventLog

T = TypeVar("T")


class LazyCommand:
    """A command function imported only when its command runs: ``"package.module:function"``.

    Parsers are built for every command on each start, so a module that only registers
    arguments must not import the event contracts, SQLAlchemy or NATS: ``gongkai --help``
    then answers in a tenth of a second instead of two (the command modules' imports).
    """

    def __init__(self, target: str) -> None:
        self.target = target

    def resolve(self) -> Callable[[argparse.Namespace], int]:
        module, _, name = self.target.partition(":")
        func: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
        return func

    def __call__(self, args: argparse.Namespace) -> int:
        return self.resolve()(args)


def lazy(target: str) -> LazyCommand:
    """``target``'s function, imported when the command runs (see ``LazyCommand``)."""
    return LazyCommand(target)


def command_group(sub: Any, name: str, help_text: str) -> Any:
    """``gongkai NAME COMMAND``: a command made of commands, one of which must be named; the
    parser to add them to."""
    group = sub.add_parser(name, help=help_text)
    return group.add_subparsers(dest=f"{name}_command", required=True)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        nats_url=getattr(args, "nats_url", None),
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
        http_host=getattr(args, "host", None),
        http_port=getattr(args, "port", None),
        log_format=getattr(args, "log_format", None),
        nats_port=getattr(args, "nats_port", None),
        nats_monitor_port=getattr(args, "nats_monitor_port", None),
        demo=getattr(args, "demo", None) or None,
        nats_sync_always=False if getattr(args, "no_sync", False) else None,
    )


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nats-url", help="connect to this NATS instead of starting one ($GONGKAI_NATS_URL)"
    )
    p.add_argument(
        "--data-dir", help="where the embedded server and SQLite live ($GONGKAI_DATA_DIR, ./var)"
    )
    p.add_argument("--host", help="HTTP address ($GONGKAI_HTTP_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port ($GONGKAI_HTTP_PORT, 8080)")
    p.add_argument("--nats-port", type=int, help="embedded NATS port ($GONGKAI_NATS_PORT, 4222)")
    p.add_argument(
        "--nats-monitor-port", type=int,
        help="embedded NATS monitoring port on loopback ($GONGKAI_NATS_MONITOR_PORT; "
        "0, the default: a free one, printed at start)",
    )
    p.add_argument("--log-format", choices=["console", "json"], help="($GONGKAI_LOG_FORMAT)")
    p.add_argument(
        "--no-sync",
        action="store_true",
        help="embedded server: fsync on JetStream's interval, not on every write (faster, "
        "loses the last writes on a power cut)",
    )


def _host(only: Sequence[str] | None = None) -> ModuleType:
    """``gongkai.runtime.host`` and the services it will start, imported with the cyclic
    collector off.

    Importing FastAPI, SQLAlchemy, faststream and the services makes hundreds of thousands of
    objects that live as long as the process; the collections their allocations set off
    walked them again and again: importing the host and the four services, alternated six
    times, 2.21 -> 2.07 s of CPU (medians), at every ``gongkai up`` and every service
    process (the tests start dozens). The little they leave as garbage goes at the first
    collection after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        from gongkai.runtime import host, service

        with contextlib.suppress(service.UnknownService):  # refused in one line by the start
            service.discover(only)
    finally:
        if enabled:
            gc.enable()
    return host


def cmd_up(args: argparse.Namespace) -> int:
    return int(_host().run(_settings(args)))


def cmd_service(args: argparse.Namespace) -> int:
    name = args.name
    if name is None:
        # An image carries one service (deploy/Dockerfile): that is the one to run.
        installed = sorted(ep.name for ep in entry_points(group="gongkai.services"))
        if len(installed) != 1:
            print(
                "gongkai service: name the service to run; installed: "
                + (", ".join(installed) or "none"),
                file=sys.stderr,
            )
            return 2
        name = installed[0]
    return int(_host([name]).run(_settings(args), only=[name]))


def cmd_events_schema(args: argparse.Namespace) -> int:
    from gongkai.events.schemas import schema_documents

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    docs = schema_documents()
    for stale in sorted(out.glob("*.json")):
        # A schema file the registry no longer produces would be published as if current.
        if stale.name not in docs:
            stale.unlink()
            print(f"removed {stale}")
    for name, text in docs.items():
        (out / name).write_text(text)
        print(out / name)
    return 0


def cmd_events_docs(args: argparse.Namespace) -> int:
    from gongkai.events.markdown import render

    path = Path(args.out)
    text = path.read_text()
    try:
        new = render(text)
    except ValueError as exc:
        print(f"gongkai events docs: {exc}", file=sys.stderr)
        return 1
    if new != text:
        path.write_text(new)
    print(path)
    return 0


def cmd_events_asyncapi(args: argparse.Namespace) -> int:
    from gongkai.runtime.asyncapi import asyncapi_documents

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in asyncapi_documents().items():
        (out / f"{name}.yaml").write_text(text)
        print(out / f"{name}.yaml")
    return 0


async def _tool_log(args: argparse.Namespace, command: str) -> tuple[EventLog, str] | None:
    """The log for a command-line tool, or None once the reason it cannot be had is printed."""
    from gongkai.runtime.startup import StartupError, check_nats

    url = args.nats_url or Settings.from_env().nats_url or "nats://127.0.0.1:4222"
    try:
        auth = credentials.for_tool(args)
        await check_nats(url, auth=auth)
        return await credentials.connect_tool(url, auth, connect_timeout=5), url
    except (StartupError, Exception) as exc:  # noqa: BLE001
        print(f"gongkai events {command}: {exc}", file=sys.stderr)
        return None


async def _tail(args: argparse.Namespace) -> int:
    import nats.errors

    from gongkai.eventlog import EventLogError
    from gongkai.events import EventDecodeError

    connected = await _tool_log(args, "tail")
    if connected is None:
        return 1
    evlog, _ = connected
    filt = subjects.type_filter(args.type) if args.type else None
    try:
        async for msg in evlog.raw_replay(
            from_seq=args.from_seq, filter_subject=filt, follow=not args.no_follow
        ):
            seq = msg.metadata.sequence.stream
            try:
                rec = evlog.decode(msg)
            except EventDecodeError as exc:
                print(f"{seq:>8}  UNDECODABLE  {msg.subject}  {exc}", flush=True)
                continue
            env = rec.envelope
            if args.json:
                print(json.dumps({"seq": seq, **env.model_dump(mode="json")}, ensure_ascii=False))
            else:
                a = env.actor
                print(
                    f"{seq:>8}  {env.recorded_at:%Y-%m-%dT%H:%M:%SZ}  {env.type:<22} "
                    f"{env.aggregate_type}/{env.aggregate_id}  by {a.person} ({a.role}, {a.unit})",
                    flush=True,
                )
    except KeyboardInterrupt:
        pass
    except (EventLogError, nats.errors.Error) as exc:
        # No log there (a server without the stream), or the server went away mid-read.
        print(f"gongkai events tail: reading the log failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await evlog.close()
    return 0


async def _on_tool_log(
    args: argparse.Namespace,
    command: str,
    work: Callable[[EventLog], Awaitable[T]],
    errors: tuple[type[Exception], ...],
) -> tuple[T, str] | None:
    """``work``'s result on the tool's log (closed after) and the log's URL; None once the
    reason is printed: no connection, or ``work`` failed with one of ``errors``."""
    connected = await _tool_log(args, command)
    if connected is None:
        return None
    evlog, url = connected
    try:
        return await work(evlog), url
    except errors as exc:
        print(f"gongkai events {command}: {exc}", file=sys.stderr)
        return None
    finally:
        await evlog.close()


async def _init_streams(args: argparse.Namespace) -> int:
    from gongkai.eventlog import StreamSettings

    def settings() -> StreamSettings:
        return StreamSettings(replicas=args.replicas or Settings.from_env().stream_replicas)

    # Only admin may create or change streams (gongkai.trust.matrix). Any failure is the
    # tool's message, not a traceback.
    done = await _on_tool_log(
        args, "init-streams", lambda evlog: evlog.ensure_stream(settings()), (Exception,)
    )
    if done is None:
        return 1
    print(f"streams {subjects.STREAM} and {subjects.DLQ_STREAM} are ready at {done[1]}")
    return 0


async def _export(args: argparse.Namespace, out: IO[str]) -> int:
    from gongkai import backup
    from gongkai.logtypes import EventLogError

    done = await _on_tool_log(
        args,
        "export",
        lambda evlog: backup.export_log(evlog, out, backup.printer(sys.stderr, "exported")),
        (OSError, EventLogError),
    )
    if done is None:
        return 1
    print(f"gongkai events export: {done[0]:,} events written to {args.out}", file=sys.stderr)
    return 0


async def _import(args: argparse.Namespace) -> int:
    from gongkai import backup
    from gongkai.logtypes import EventLogError

    path = Path(args.file)
    try:
        backup.check_file(path)  # before connecting: a damaged file records nothing
    except backup.ExportFileError as exc:
        print(f"gongkai events import: {exc}", file=sys.stderr)
        return 2
    done = await _on_tool_log(
        args,
        "import",
        lambda evlog: backup.import_log(evlog, path, backup.printer(sys.stderr, "imported")),
        (backup.ExportFileError, EventLogError),
    )
    if done is None:
        return 1
    n, url = done
    print(f"gongkai events import: {n:,} events stored at {url}; "
          "check them with gongkai audit verify", file=sys.stderr)
    return 0


def cmd_events_export(args: argparse.Namespace) -> int:
    import asyncio

    if args.out == "-":
        return asyncio.run(_export(args, sys.stdout))
    try:
        with open(args.out, "w", encoding="utf-8") as out:
            return asyncio.run(_export(args, out))
    except OSError as exc:
        print(f"gongkai events export: {args.out}: {exc.strerror}", file=sys.stderr)
        return 1


def cmd_events_import(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_import(args))


def cmd_events_init(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_init_streams(args))


def cmd_events_tail(args: argparse.Namespace) -> int:
    import asyncio

    from gongkai.events import REGISTRY

    if args.type and args.type not in REGISTRY.types():
        known = ", ".join(sorted(REGISTRY.types()))
        print(
            f"gongkai events tail: unknown event type {args.type!r}; known: {known}",
            file=sys.stderr,
        )
        return 2
    if args.from_seq < 1:
        print("gongkai events tail: --from-seq must be at least 1", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_tail(args))
    except KeyboardInterrupt:
        return 0


def _db_targets(args: argparse.Namespace) -> list[tuple[str, str]] | str:
    """(service, database URL) pairs the db command works on, or an error message."""
    from gongkai import migrations

    s = Settings.from_env(
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None
    )
    names: list[str] = list(dict.fromkeys(args.service or []))
    if args.url:
        if len(names) != 1:
            return "--url needs exactly one --service NAME: the service decides the tables"
        return [(names[0], args.url)]
    if not names:
        # What this process would run (installed services) and what the init step was told
        # about (GONGKAI_DB_URL_<SERVICE>). Each service owns its migrations, so a database
        # whose service is not installed here is refused (by ``upgrade``), not half-migrated.
        installed = [ep.name for ep in entry_points(group="gongkai.services")]
        names = sorted({*installed, *migrations.installed(), *s.db_urls})
    return [(n, s.db_url(n)) for n in names]


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from gongkai import migrations
    from gongkai.projection import make_engine

    targets = _db_targets(args)
    if isinstance(targets, str):
        print(f"gongkai db upgrade: {targets}", file=sys.stderr)
        return 2
    for service, url in targets:
        where = migrations.display_url(url)
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = make_engine(url)
            try:
                before, after = migrations.upgrade(engine, service)
            finally:
                engine.dispose()
        except Exception as exc:  # noqa: BLE001 - one line per failure, not a traceback
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            print(
                f"gongkai db upgrade: {service}: {where}: {reason[0] if reason else exc!r}",
                file=sys.stderr,
            )
            return 1
        change = (
            f"at {after}, nothing to do" if before == after else f"{before or 'empty'} -> {after}"
        )
        print(f"{service:<15} {where}  {change}")
    return 0


def cmd_db_check(args: argparse.Namespace) -> int:
    from gongkai import migrations
    from gongkai.projection import make_engine

    targets = _db_targets(args)
    if isinstance(targets, str):
        print(f"gongkai db check: {targets}", file=sys.stderr)
        return 2
    behind = 0
    for service, url in targets:
        engine = make_engine(url)
        try:
            migrations.check(engine, service)
            print(f"{service:<15} {migrations.display_url(url)}  at {migrations.head(service)}")
        except migrations.DatabaseNotReady as exc:
            print(str(exc), file=sys.stderr)
            behind += 1
        finally:
            engine.dispose()
    return 1 if behind else 0


def cmd_nats_config(args: argparse.Namespace) -> int:
    from gongkai.trust import deployfiles

    out = Path(args.out)
    try:
        files = deployfiles.generate(out)
    except (OSError, deployfiles.DeployFileError) as exc:
        print(f"gongkai nats config: {exc}", file=sys.stderr)
        return 1
    stale = [rel for rel, text in files.items() if (out / rel).read_text() != text]
    if args.check:
        for rel in stale:
            print(f"out of date: {out / rel} (run gongkai nats config)", file=sys.stderr)
        return 1 if stale else 0
    for path in deployfiles.write(out):
        print(path)
    return 0


def _data_dir(args: argparse.Namespace) -> Path:
    return Settings.from_env(
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None
    ).data_dir


def cmd_nats_credentials(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    try:
        keys = credentials.ensure_credentials(data_dir)
    except (OSError, credentials.CredentialsError) as exc:
        print(f"gongkai nats credentials: {exc}", file=sys.stderr)
        return 1
    for user in matrix.USERS:
        print(f"{user:<15} {keys[user]}  {credentials.seed_file(data_dir, user).resolve()}")
    return 0


def cmd_nats_rotate(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    try:
        key = credentials.rotate(data_dir, args.user)
    except (OSError, credentials.CredentialsError) as exc:
        print(f"gongkai nats rotate: {exc}", file=sys.stderr)
        return 1
    print(f"{args.user}: new public key {key}")
    print("restart gongkai up to apply; clients using the old seed are refused from then on")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gongkai", description="gongkai: the disclosure platform's compliance backbone"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start nats-server, every installed service and the HTTP API")
    _add_common(up)
    up.add_argument("--demo", action="store_true", help="load the demo county and print its tokens")
    up.set_defaults(func=cmd_up)

    svc = sub.add_parser("service", help="run one service alone (what compose and Kubernetes run)")
    svc.add_argument(
        "name", nargs="?", help="the service; default: the only one installed (as in an image)"
    )
    _add_common(svc)
    svc.set_defaults(func=cmd_service)

    evs = command_group(sub, "events", "the event contracts and the log")
    sch = evs.add_parser("schema", help="write a JSON Schema per event type")
    sch.add_argument("--out", default="docs/schemas")
    sch.set_defaults(func=cmd_events_schema)
    md = evs.add_parser(
        "docs", help="regenerate the tables of docs/events.md (between its generated markers)"
    )
    md.add_argument("--out", default="docs/events.md")
    md.set_defaults(func=cmd_events_docs)
    aa = evs.add_parser("asyncapi", help="write each service's AsyncAPI document")
    aa.add_argument("--out", default="docs/asyncapi")
    aa.set_defaults(func=cmd_events_asyncapi)
    init = evs.add_parser(
        "init-streams", help="create or verify the event and dead-letter streams (the init step)"
    )
    init.add_argument("--nats-url")
    init.add_argument("--replicas", type=int, help="stream replicas (3 in a cluster)")
    credentials.add_tool_arguments(init, "admin")
    init.set_defaults(func=cmd_events_init)
    tail = evs.add_parser("tail", help="print events as they are recorded")
    tail.add_argument("--type", help="only this event type, e.g. PostSubmitted")
    tail.add_argument("--from-seq", type=int, default=1, help="start at this stream sequence")
    tail.add_argument("--nats-url")
    tail.add_argument("--json", action="store_true", help="print whole envelopes as JSON lines")
    tail.add_argument("--no-follow", action="store_true", help="stop at the end of the log")
    credentials.add_tool_arguments(tail, "inspector")
    tail.set_defaults(func=cmd_events_tail)
    exp = evs.add_parser(
        "export", help="back up the log: every message as stored, one JSON line each"
    )
    exp.add_argument("--out", default="-", help="file to write (default: standard output)")
    exp.add_argument("--nats-url")
    credentials.add_tool_arguments(exp, "inspector")
    exp.set_defaults(func=cmd_events_export)
    imp = evs.add_parser(
        "import",
        help="restore an export into an empty stream (same sequences, ids and signatures); "
        "run again to resume one that stopped",
    )
    imp.add_argument("file", help="a file written by gongkai events export")
    imp.add_argument("--nats-url")
    credentials.add_tool_arguments(imp, "admin")
    imp.set_defaults(func=cmd_events_import)

    dbs = command_group(sub, "db", "the read-model databases: versioned migrations")
    for name, func, text in (
        ("upgrade", cmd_db_upgrade, "migrate the databases to this code's head (the init step)"),
        ("check", cmd_db_check, "exit 1 unless every database is at this code's head"),
    ):
        p = dbs.add_parser(name, help=text)
        p.add_argument(
            "--service",
            action="append",
            help="only this service's database (repeatable); default: every installed service "
            "and every $GONGKAI_DB_URL_<SERVICE>",
        )
        p.add_argument("--url", help="this database URL instead of the configured one")
        p.add_argument("--data-dir", help="where the SQLite files live ($GONGKAI_DATA_DIR, ./var)")
        p.set_defaults(func=func)

    ns = command_group(sub, "nats", "NATS users and credentials (the permission matrix)")
    cfg = ns.add_parser(
        "config", help="write the deploy files' NATS users from the matrix (make nats-config)"
    )
    cfg.add_argument("--out", default="deploy", help="the deploy directory (./deploy)")
    cfg.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is out of date"
    )
    cfg.set_defaults(func=cmd_nats_config)
    cr = ns.add_parser(
        "credentials", help="list the local NATS users, their public keys and seed files"
    )
    cr.add_argument("--data-dir", help="($GONGKAI_DATA_DIR, ./var)")
    cr.set_defaults(func=cmd_nats_credentials)
    rot = ns.add_parser(
        "rotate", help="replace one user's NKey seed (restart gongkai up to apply)"
    )
    rot.add_argument("user", choices=matrix.USERS)
    rot.add_argument("--data-dir", help="($GONGKAI_DATA_DIR, ./var)")
    rot.set_defaults(func=cmd_nats_rotate)

    calendar_cli.register(sub)
    keys_cli.register(sub)

    # A register function may return another, called once every package has registered: it
    # adds to another package's commands, whatever order the entry points come in.
    extend = [ep.load()(sub) for ep in entry_points(group="gongkai.cli")]
    for more in extend:
        if more is not None:
            more(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Any = args.func
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
