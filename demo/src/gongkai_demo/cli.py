"""``gongkai demo``, ``gongkai directory demo`` and ``gongkai demo-history``: arguments.

The commands are in ``commands``, imported when one runs: this module is read on every start
of ``gongkai``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from typing import Any

from gongkai.cli import lazy
from gongkai.trust import credentials

_COMMANDS = "gongkai_demo.commands:"


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
    story.set_defaults(func=lazy(_COMMANDS + "cmd_demo_story"))
    hist = sub.add_parser(
        "demo-history",
        help="write the demo county's year of site history before a day (deterministic) as "
        "CSV or JSON Lines, for `gongkai import`",
    )
    hist.add_argument("--out", required=True, help="FILE.csv or FILE.jsonl")
    hist.add_argument(
        "--today", type=date.fromisoformat, help="the day the county joins (default: today)"
    )
    hist.set_defaults(func=lazy(_COMMANDS + "cmd_demo_history"))
    return _register_directory_demo


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
    dem.set_defaults(func=lazy(_COMMANDS + "cmd_directory_demo"))
    credentials.add_tool_arguments(dem, "intake")
