#!/usr/bin/env python3
"""Check a gongkai proof offline: nothing of gongkai, only Python and ``cryptography``.

    python verify_proof.py --key VKEY proof.json [--origin gongkai/GONGKAI]

``proof.json`` is what ``gongkai audit prove EVENT_ID`` (inclusion) or ``gongkai audit prove
--consistency OLD [NEW]`` prints. ``VKEY`` is accountability's checkpoint verifier key,
``<name>+<8 hex key hash>+<base64(0x01 || 32-byte Ed25519 public key)>``, obtained from the
operator out of band (``gongkai audit checkpoint-key`` prints it from the trust anchors).

Checked: each checkpoint is a C2SP signed note signed by that key (c2sp.org/signed-note,
c2sp.org/tlog-checkpoint); an inclusion proof leads from SHA-256(0x00 || event bytes) to the
checkpoint's root (RFC 9162 §2.1.3.2); a consistency proof shows the old checkpoint's tree is a
prefix of the new one's (RFC 9162 §2.1.4.2). Exit status 0 if every check holds, 1 if not.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Invalid(Exception):
    pass


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def parse_vkey(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    try:
        name, khash, blob = vkey.split("+", 2)
        raw = base64.b64decode(blob, validate=True)
        if raw[0] != 0x01 or len(raw) != 33:
            raise ValueError
        if sha256(name.encode() + b"\n" + raw)[:4] != bytes.fromhex(khash):
            raise Invalid("the verifier key's hash does not match its key")
        return name, bytes.fromhex(khash), Ed25519PublicKey.from_public_bytes(raw[1:])
    except (ValueError, IndexError):
        raise Invalid("not a verifier key: NAME+HEXHASH+BASE64KEY") from None


def open_note(note: str, vkey: tuple[str, bytes, Ed25519PublicKey], origin: str | None
              ) -> tuple[int, bytes]:
    """(tree size, root hash) of a checkpoint note signed by ``vkey``."""
    name, khash, public = vkey
    text, sep, sigs = note.rpartition("\n\n")
    if not sep:
        raise Invalid("not a signed note")
    text += "\n"
    for line in sigs.rstrip("\n").split("\n"):
        if not line.startswith("\u2014 "):
            raise Invalid("malformed signature line")
        sig_name, _, blob = line[2:].partition(" ")
        raw = base64.b64decode(blob, validate=True)
        if sig_name != name or raw[:4] != khash:
            continue  # another signer's signature: not the one we trust
        try:
            public.verify(raw[4:], text.encode())
        except InvalidSignature:
            raise Invalid("the checkpoint's signature does not verify") from None
        lines = text.split("\n")
        if origin is not None and lines[0] != origin:
            raise Invalid(f"a checkpoint of {lines[0]!r}, not {origin!r}")
        root = base64.b64decode(lines[2], validate=True)
        if len(root) != 32:
            raise Invalid("a root hash has 32 bytes")
        return int(lines[1]), root
    raise Invalid("the checkpoint is not signed by the given key")


def inclusion_root(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        raise Invalid("leaf index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Invalid("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("inclusion proof too short")
    return r


def check_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
                      ) -> None:
    """RFC 9162 §2.1.4.2."""
    if not 0 < old <= new:
        raise Invalid("the old size is not a prefix of the new one")
    if old == new:
        if proof or old_root != new_root:
            raise Invalid("equal sizes, different roots")
        return
    if not proof:
        raise Invalid("empty consistency proof")
    if old & (old - 1) == 0:
        proof = [old_root, *proof]
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise Invalid("consistency proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise Invalid("the consistency proof does not lead to both roots")


def hashes(items: list[str]) -> list[bytes]:
    out = [base64.b64decode(h, validate=True) for h in items]
    if any(len(h) != 32 for h in out):
        raise Invalid("a hash has 32 bytes")
    return out


def verify(doc: dict, vkey: tuple[str, bytes, Ed25519PublicKey], origin: str | None) -> str:
    if doc.get("type") == "inclusion":
        size, root = open_note(doc["checkpoint"], vkey, origin)
        if size != doc["tree_size"]:
            raise Invalid("the proof's tree size is not the checkpoint's")
        leaf = sha256(b"\x00" + base64.b64decode(doc["event"], validate=True))
        if "leaf_hash" in doc and base64.b64decode(doc["leaf_hash"]) != leaf:
            raise Invalid("the leaf hash is not the hash of the event")
        if inclusion_root(doc["leaf_index"], size, leaf, hashes(doc["proof"])) != root:
            raise Invalid("the inclusion proof does not lead to the checkpoint's root")
        try:
            event = json.loads(base64.b64decode(doc["event"]))
            what = f"event {event.get('event_id')} ({event.get('type')})"
        except (ValueError, AttributeError):
            what = f"the entry with leaf hash {leaf.hex()}"
        return (
            f"{what} is leaf {doc['leaf_index']} "
            f"(sequence {doc['leaf_index'] + 1}) of the signed tree of size {size}"
        )
    if doc.get("type") == "consistency":
        old, old_root = open_note(doc["old"]["checkpoint"], vkey, origin)
        new, new_root = open_note(doc["new"]["checkpoint"], vkey, origin)
        check_consistency(old, new, old_root, new_root, hashes(doc["proof"]))
        return f"the signed tree of size {old} is a prefix of the signed tree of size {new}"
    raise Invalid("not a gongkai proof (type inclusion or consistency)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("proof", help="the JSON gongkai audit prove printed (- for stdin)")
    p.add_argument("--key", required=True, help="accountability's checkpoint verifier key")
    p.add_argument("--origin", help="the log's origin line to insist on (gongkai/GONGKAI)")
    args = p.parse_args(argv)
    try:
        if args.proof == "-":
            text = sys.stdin.read()
        else:
            with open(args.proof) as f:
                text = f.read()
        print("OK: " + verify(json.loads(text), parse_vkey(args.key), args.origin))
        return 0
    except (Invalid, OSError, ValueError, KeyError, TypeError) as exc:
        print(f"FAILED: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
