"""``gongkai demo``, ``gongkai directory demo`` and ``gongkai demo-history``: the demo county,
from the command line (their arguments: ``cli``).

Both record as intake (the service that owns the directory's events) with the operator's
intake credentials, like intake's own directory tools, whose helpers they use.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from gongkai.calendar import local_date
from gongkai.eventlog import EventLog
from gongkai.runtime.clock import SystemClock
from gongkai.runtime.settings import Settings
from gongkai_demo import county
from gongkai_intake.entrypoints.commands import nats_url, run_tool, with_intake_log


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


def cmd_demo_history(args: argparse.Namespace) -> int:
    from gongkai_demo.history import history_items, write_history

    day = args.today or local_date(SystemClock().now())
    items = history_items(day)
    write_history(items, Path(args.out))
    print(f"{len(items)} items of {day - timedelta(days=365)} to {day - timedelta(days=1)} "
          f"written to {args.out}")
    return 0
