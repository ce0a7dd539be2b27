"""``gongkai demo``, ``gongkai directory demo`` and ``gongkai demo-history``: the demo county,
from the command line.

Both record as intake (the service that owns the directory's events) with the operator's
intake credentials, like intake's own directory tools, whose helpers they use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from gongkai.calendar import local_date
from gongkai.eventlog import EventLog
from gongkai.runtime.clock import SystemClock
from gongkai.runtime.settings import Settings
from gongkai.trust import credentials
from gongkai_demo import county
from gongkai_intake.entrypoints.cli import nats_url, run_tool, with_intake_log


def cmd_directory_demo(args: argparse.Namespace) -> int:
    async def work(evlog: EventLog) -> int:
        report = await county.seed_demo(evlog, SystemClock().now())
        print(f"{report.events} events recorded", file=sys.stderr)
        county.print_tokens(sys.stdout)
        return 0

    return run_tool("directory demo", lambda: with_intake_log(nats_url(args), work, args))


def _platform_url() -> str:
    s = Settings.from_env()
    # A wildcard listen address is reached on loopback from this machine.
    host = "127.0.0.1" if s.http_host in ("0.0.0.0", "::", "") else s.http_host
    return f"http://{host}:{s.http_port}"


def cmd_demo_story(args: argparse.Namespace) -> int:
    import httpx

    from gongkai_demo.story import DemoError, DemoStory

    url = (args.url or _platform_url()).rstrip("/")

    async def main() -> int:
        if args.load_county:

            async def seed(evlog: EventLog) -> int:
                report = await county.seed_demo(evlog, SystemClock().now())
                print(f"demo county loaded ({report.events} events recorded)", file=sys.stderr)
                return 0

            await with_intake_log(nats_url(args), seed, args)
        async with httpx.AsyncClient(base_url=url, timeout=15) as client:
            story = DemoStory(client, now=SystemClock().now, out=sys.stdout, timeout=args.timeout)
            await story.run(directory_loaded=args.load_county)
        return 0

    try:
        return run_tool("demo", main)
    except DemoError as exc:
        print(f"gongkai demo: {exc}", file=sys.stderr)
        return 1


def register(sub: Any) -> Callable[[Any], None]:
    """Entry point of the ``gongkai.cli`` group: ``gongkai demo`` now, and ``gongkai directory
    demo`` once every package has registered (``directory`` is intake's command)."""
    story = sub.add_parser(
        "demo",
        help="play a scripted stretch of the demo county's life into a running platform "
        "(`gongkai up --demo` in another terminal), then print freshness and violations",
    )
    story.add_argument(
        "--url",
        help="the platform's HTTP API (default http://$GONGKAI_HTTP_HOST:$GONGKAI_HTTP_PORT)",
    )
    story.add_argument(
        "--load-county",
        action="store_true",
        help="first record the demo county (fictional people, public tokens) into the "
        "platform's log, for a platform started without --demo; never on a real deployment",
    )
    story.add_argument(
        "--nats-url", help="with --load-county ($GONGKAI_NATS_URL, nats://127.0.0.1:4222)"
    )
    credentials.add_tool_arguments(story, "intake")
    story.add_argument(
        "--timeout", type=float, default=20.0, help="seconds to wait for each reaction (20)"
    )
    story.set_defaults(func=cmd_demo_story)
    hist = sub.add_parser(
        "demo-history",
        help="write the demo county's year of site history before a day (deterministic) as "
        "CSV or JSON Lines, for `gongkai import`",
    )
    hist.add_argument("--out", required=True, help="FILE.csv or FILE.jsonl")
    hist.add_argument(
        "--today", type=date.fromisoformat, help="the day the county joins (default: today)"
    )
    hist.set_defaults(func=cmd_demo_history)
    return _register_directory_demo


def cmd_demo_history(args: argparse.Namespace) -> int:
    from gongkai_demo.history import history_items, write_history

    day = args.today or local_date(SystemClock().now())
    items = history_items(day)
    write_history(items, Path(args.out))
    print(f"{len(items)} items of {day - timedelta(days=365)} to {day - timedelta(days=1)} "
          f"written to {args.out}")
    return 0


def _register_directory_demo(sub: Any) -> None:
    directory = sub.choices.get("directory")
    if directory is None:  # intake's commands are not installed: nothing to extend
        return
    (commands,) = (
        a for a in directory._actions if isinstance(a, argparse._SubParsersAction)
    )
    dem = commands.add_parser(
        "demo", help="load the demo county (fictional people) and print its public tokens"
    )
    dem.add_argument("--nats-url", help="($GONGKAI_NATS_URL, nats://127.0.0.1:4222)")
    dem.set_defaults(func=cmd_directory_demo)
    credentials.add_tool_arguments(dem, "intake")
