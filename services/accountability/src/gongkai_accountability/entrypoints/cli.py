"""``gongkai audit {trail,rebuild,as-of,report,alerts,verify,prove,checkpoint-key}``: arguments.

The inspectors' tools themselves are in ``commands``, imported only when one runs (``lazy``):
this module is read on every start of ``gongkai``, ``--help`` included.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from gongkai.cli import command_group, lazy
from gongkai.trust import credentials

_COMMANDS = "gongkai_accountability.entrypoints.commands:"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def register(sub: Any) -> None:
    a = command_group(
        sub, "audit", "inspectors' tools: trail, rebuild, as-of, report, alerts, verify, prove"
    )

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--nats-url", help="the platform's NATS ($GONGKAI_NATS_URL)")
        credentials.add_tool_arguments(p, "inspector")

    t = a.add_parser("trail", help="a post's chain of custody")
    t.add_argument("post")
    t.add_argument("--json", action="store_true")
    common(t)
    t.set_defaults(func=lazy("gongkai_accountability.entrypoints.trail:cmd_trail"))

    r = a.add_parser("rebuild", help="drop accountability's read model and replay the log")
    r.add_argument("--db-url", help="default: accountability's database from the settings")
    r.add_argument("--json", action="store_true")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    common(r)
    r.set_defaults(func=lazy(_COMMANDS + "cmd_rebuild"))

    s = a.add_parser("as-of", help="columns, open cases and violations as they stood on a date")
    s.add_argument("date", type=_date)
    s.add_argument("--unit")
    s.add_argument("--json", action="store_true")
    common(s)
    s.set_defaults(func=lazy(_COMMANDS + "cmd_as_of"))

    p = a.add_parser("report", help="per-unit compliance for a period, ranked")
    p.add_argument("--unit")
    p.add_argument("--from", dest="start", type=_date, required=True)
    p.add_argument("--to", dest="end", type=_date, required=True)
    p.add_argument("--format", choices=["table", "csv", "json", "html"], default="table")
    common(p)
    p.set_defaults(func=lazy(_COMMANDS + "cmd_report"))

    v = a.add_parser(
        "verify",
        help="recompute the log's Merkle tree and check every signed checkpoint against it",
    )
    common(v)
    v.set_defaults(func=lazy(_COMMANDS + "cmd_verify"))

    pr = a.add_parser(
        "prove",
        help="an inclusion proof of an event, or a consistency proof between two checkpoints "
        "(JSON; check it with tools/verify_proof.py)",
    )
    pr.add_argument("event_id", nargs="?", help="the event to prove against the latest checkpoint")
    pr.add_argument("--consistency", type=int, metavar="OLD_SIZE",
                    help="prove checkpoint OLD_SIZE is a prefix of NEW_SIZE (default: latest)")
    pr.add_argument("new_size", nargs="?", type=int, metavar="NEW_SIZE")
    common(pr)
    pr.set_defaults(func=lazy(_COMMANDS + "cmd_prove"))

    al = a.add_parser(
        "alerts", help="integrity alerts: events in the log that failed a trust check"
    )
    al.add_argument(
        "--check",
        choices=["unsigned", "unknown_key", "wrong_service", "bad_signature", "retired_key",
                 "authority"],
    )
    al.add_argument("--json", action="store_true")
    common(al)
    al.set_defaults(func=lazy(_COMMANDS + "cmd_alerts"))

    k = a.add_parser(
        "checkpoint-key", help="accountability's checkpoint verifier key (note vkey format)"
    )
    k.set_defaults(func=lazy(_COMMANDS + "cmd_checkpoint_key"))
