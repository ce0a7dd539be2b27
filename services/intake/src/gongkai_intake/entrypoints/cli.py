"""``gongkai people``, ``gongkai directory`` and ``gongkai import``: arguments.

The operator's tools are in ``commands``, imported when one runs (``lazy``): this module is
read on every start of ``gongkai``, ``--help`` included.
"""

from __future__ import annotations

from typing import Any

from gongkai.cli import command_group, lazy
from gongkai.trust import credentials

_COMMANDS = "gongkai_intake.entrypoints.commands:"


def _tool(parser: Any, command: str) -> None:
    """Every intake tool talks to NATS as intake: where to reach it, with which credentials,
    and the function of ``commands`` it runs."""
    parser.add_argument("--nats-url", help="($GONGKAI_NATS_URL, nats://127.0.0.1:4222)")
    parser.set_defaults(func=lazy(_COMMANDS + command))
    credentials.add_tool_arguments(parser, "intake")


def register(sub: Any) -> None:
    """Entry point of the ``gongkai.cli`` group: add intake's commands to ``gongkai``."""
    pp = command_group(sub, "people", "people of the unit directory")
    tok = pp.add_parser(
        "token",
        help="issue a bearer token for PERSON and print it once (only its hash is recorded); "
        "it replaces (revokes) PERSON's earlier tokens unless --keep-others",
    )
    tok.add_argument("person", metavar="PERSON", help="person id, e.g. finance-maker")
    tok.add_argument(
        "--keep-others",
        action="store_true",
        help="leave PERSON's earlier tokens valid (a second device, say)",
    )
    tok.add_argument(
        "--days",
        type=int,
        help="days until the token expires ($GONGKAI_TOKEN_LIFETIME_DAYS, 90)",
    )
    _tool(tok, "cmd_token")
    rev = pp.add_parser(
        "revoke",
        help="revoke PERSON's token TOKEN, or all of PERSON's tokens; every service refuses "
        "them once this returns",
    )
    rev.add_argument("person", metavar="PERSON")
    rev.add_argument(
        "token",
        metavar="TOKEN",
        nargs="?",
        help="the token, its sha256, or the hint 'people tokens' shows (…abcd: give abcd); "
        "without it, every live token of PERSON",
    )
    _tool(rev, "cmd_revoke")
    lst = pp.add_parser(
        "tokens", help="list PERSON's live tokens: hint, issued at, expires at (no secrets)"
    )
    lst.add_argument("person", metavar="PERSON")
    _tool(lst, "cmd_tokens")

    dd = command_group(sub, "directory", "the unit directory: units, people, roles")
    load = dd.add_parser(
        "load",
        help="record the units, people and roles of a YAML/JSON file (see docs/intake.md); "
        "loading it again records nothing",
    )
    load.add_argument("file", metavar="FILE")
    _tool(load, "cmd_load")

    imp = sub.add_parser(
        "import",
        help="record a CMS export of the site's items (CSV or JSON Lines: unit, column, title, "
        "url, online_at[, content_digest]) as historical publications; importing it again "
        "records nothing (docs/intake.md)",
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        help="the file's format (default: jsonl for .jsonl/.ndjson, else csv)",
    )
    imp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _tool(imp, "cmd_import")
