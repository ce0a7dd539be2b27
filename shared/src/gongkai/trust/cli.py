"""``gongkai keys {init,show,rotate,export}`` — the services' signing keys and trust anchors.

``register`` only builds parsers; the main ``gongkai`` CLI wires it in and calls
``args.func(args)``, whose return value is the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gongkai.runtime.settings import Settings
from gongkai.trust.owners import SERVICES

__all__ = ["register"]


def _keys_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "keys_dir", None):
        return Path(args.keys_dir)
    data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else None
    return Settings.from_env(data_dir=data_dir).keys_path


def _fail(command: str, message: str) -> int:
    print(f"gongkai keys {command}: {message}", file=sys.stderr)
    return 1


# Each command imports gongkai.trust.keys (cryptography) itself: the parsers are built on
# every `gongkai` start, the keys are needed only here.


def cmd_init(args: argparse.Namespace) -> int:
    from gongkai.trust.keys import TRUST_FILE, KeyFileError, provision

    keys_dir = _keys_dir(args)
    try:
        ring = provision(keys_dir)
    except (OSError, KeyFileError) as exc:
        return _fail("init", str(exc))
    for s in SERVICES:
        print(f"{s:<15} {ring.private[s].key_id}  {(keys_dir / f'{s}.key').resolve()}")
    print(f"trust anchors   {(keys_dir / TRUST_FILE).resolve()}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from gongkai.trust.keys import TRUST_FILE, KeyFileError, TrustStore

    keys_dir = _keys_dir(args)
    try:
        trust = TrustStore.load(keys_dir / TRUST_FILE)
    except KeyFileError as exc:
        return _fail("show", str(exc))
    rows: list[dict[str, Any]] = [k.to_dict() for k in trust.keys.values()]
    rows.sort(key=lambda r: (r["service"], r["retired_after"] or "~"))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        state = f"retired after {r['retired_after']}" if r["retired_after"] else "signing"
        print(f"{r['service']:<15} {r['key_id']}  {state}")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from gongkai.trust.keys import KeyFileError, rotate

    keys_dir = _keys_dir(args)
    try:
        old, new = rotate(keys_dir, args.service)
    except (OSError, KeyFileError) as exc:
        return _fail("rotate", str(exc))
    print(f"{args.service}: new key {new}; {old} retired (still verifies what it signed)")
    print("restart the service, and give every reader the new trust.json")
    return 0


def register(sub: Any) -> None:
    keys = sub.add_parser(
        "keys", help="the services' event-signing keys and the trust anchors (docs/security.md)"
    )
    ks = keys.add_subparsers(dest="keys_command", required=True)

    def where(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", help="a local data directory (keys under <dir>/keys)")
        p.add_argument("--keys-dir", help="the keys directory itself ($GONGKAI_KEYS_DIR)")

    init = ks.add_parser("init", help="generate what is missing: a key per service, trust.json")
    where(init)
    init.set_defaults(func=cmd_init)
    show = ks.add_parser("show", help="the trust anchors: key ids, services, retired keys")
    show.add_argument("--json", action="store_true")
    where(show)
    show.set_defaults(func=cmd_show)
    rot = ks.add_parser("rotate", help="a new key for one service; the old one is retired")
    rot.add_argument("service", choices=SERVICES)
    where(rot)
    rot.set_defaults(func=cmd_rotate)
