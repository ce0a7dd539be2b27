"""``gongkai freshness {status,rules}``: arguments; the commands are in ``commands``.

Read on every start of ``gongkai`` (``--help`` included), so it imports no more than argparse
needs; ``lazy`` imports the command module when a command runs.
"""

from __future__ import annotations

from typing import Any

from gongkai.cli import lazy
from gongkai.trust import credentials

_COMMANDS = "gongkai_freshness.entrypoints.commands:"
#: A column's states, as ``--state`` takes them and the table counts them.
STATES = ("fresh", "due_soon", "stale", "hidden", "blank")


def register(subparsers: Any) -> None:
    """Add ``freshness status`` and ``freshness rules`` to the main CLI."""
    parser = subparsers.add_parser(
        "freshness",
        help="column deadlines: status from the log, rule-set checks",
        description="Column freshness under the notice's Attachment 2 and the national lines.",
    )
    commands = parser.add_subparsers(dest="freshness_command", metavar="COMMAND", required=True)
    status = commands.add_parser(
        "status",
        help="unit x column table as of a date, replayed from the log",
        description="Replay the event log and print each column's state as of a date.",
    )
    status.add_argument("--unit", help="only this unit (code)")
    status.add_argument("--as-of", help="evaluate as of this date, YYYY-MM-DD (default: today)")
    status.add_argument("--nats-url", help="NATS to read the log from ($GONGKAI_NATS_URL)")
    credentials.add_tool_arguments(status, "inspector")
    status.add_argument(
        "--rule-set",
        action="append",
        metavar="NAME|PATH",
        help="evaluate under this rule set (repeatable; default: $GONGKAI_FRESHNESS_RULE_SETS "
        "or wenan-2018 and national-2019)",
    )
    status.add_argument("--state", choices=STATES, help="only rows in this state")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(func=lazy(_COMMANDS + "_cmd_status"))
    rules = commands.add_parser(
        "rules",
        help="check rule-set files and print their rules",
        description="Load and validate rule sets (shipped names or YAML paths) and print them.",
    )
    rules.add_argument("ref", nargs="*", metavar="NAME|PATH", help="rule sets (default: active)")
    rules.set_defaults(func=lazy(_COMMANDS + "_cmd_rules"))
