"""Signed checkpoints of the log: C2SP signed notes (c2sp.org/signed-note, tlog-checkpoint).

A checkpoint's text is

    gongkai/GONGKAI                      origin: which log
    1000                                 tree size (events 1..1000)
    <base64 root hash>                   RFC 9162 root of those events (gongkai.trust.merkle)
    gongkai-time 2026-03-02T08:00:00Z    extension lines: when it was signed,
    gongkai-tile 1 <base64 sha256>       the leaf hashes of its range (first sequence; hash of
                                         the packed 32-byte hashes the LogCheckpoint event carries)
    gongkai-rejected 0 <base64 sha256>   the sequences in that range that failed a trust check

followed by a blank line and one signature line per signer:

    — <key name> <base64(4-byte key hash || Ed25519 signature of the text)>

with key hash = SHA-256(key name || "\\n" || 0x01 || 32-byte public key)[:4]. The note is signed
by accountability's key; anyone with its public key checks it (``tools/verify_proof.py`` does,
with nothing of gongkai). A note text never starts with ``gk-event-v1``, so no event signature
can pass for a checkpoint signature, nor the reverse.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gongkai.trust.keys import ServiceKey, TrustedKey, TrustStore, b64, raw_public, unb64

SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space
ALG_ED25519 = 0x01
SIGNER = "accountability"


class NoteError(ValueError):
    """A note or checkpoint that is malformed or whose signature does not hold."""


def origin_of(stream: str) -> str:
    return f"gongkai/{stream}"


def key_name(service: str = SIGNER) -> str:
    return f"gongkai-{service}"


def key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4]


def verifier_key(name: str, public: bytes) -> str:
    """The note verifier key string (``name+hex key hash+base64(0x01 || key)``)."""
    return f"{name}+{key_hash(name, public).hex()}+" + base64.b64encode(
        bytes([ALG_ED25519]) + public
    ).decode()


def digest_b64(data: bytes) -> str:
    return b64(hashlib.sha256(data).digest())


def rejected_text(seqs: Iterable[int]) -> bytes:
    return ",".join(str(s) for s in sorted(seqs)).encode()


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    def extension(self, key: str) -> list[str] | None:
        """The words after ``key`` on its extension line, or None."""
        for line in self.extensions:
            words = line.split(" ")
            if words[0] == key:
                return words[1:]
        return None

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise NoteError("a checkpoint's text ends with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError("a checkpoint has an origin, a size and a root, no empty line")
        origin, size, root, *ext = lines
        if not size.isdigit() or (size != "0" and size.startswith("0")):
            raise NoteError(f"tree size {size[:30]!r} is not a decimal number")
        h = unb64(root, "root hash", NoteError)
        if len(h) != 32:
            raise NoteError("a root hash has 32 bytes")
        return cls(origin, int(size), h, tuple(ext))


@dataclass(frozen=True)
class GongkaiCheckpoint:
    """What gongkai's extension lines say, beside the checkpoint itself."""

    checkpoint: Checkpoint
    at: datetime
    first: int
    tile_digest: str
    rejected_count: int
    rejected_digest: str
    signers: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, cp: Checkpoint) -> GongkaiCheckpoint:
        keys = ("gongkai-time", "gongkai-tile", "gongkai-rejected")
        t, tile, rej = (cp.extension(k) for k in keys)
        if not t or len(t) != 1 or not tile or len(tile) != 2 or not rej or len(rej) != 2:
            raise NoteError("a gongkai checkpoint has gongkai-time, -tile and -rejected lines")
        try:
            return cls(cp, datetime.fromisoformat(t[0]), int(tile[0]), tile[1], int(rej[0]), rej[1])
        except ValueError:
            raise NoteError("malformed gongkai extension line") from None


def checkpoint_text(
    origin: str,
    size: int,
    root: bytes,
    *,
    at: datetime,
    first: int,
    tile: bytes,
    rejected: Sequence[int],
) -> str:
    ext = (
        f"gongkai-time {at.isoformat().replace('+00:00', 'Z')}",
        f"gongkai-tile {first} {digest_b64(tile)}",
        f"gongkai-rejected {len(rejected)} {digest_b64(rejected_text(rejected))}",
    )
    return Checkpoint(origin, size, root, ext).text()


def sign_note(text: str, key: ServiceKey, name: str | None = None) -> str:
    name = name or key_name(key.service)
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    sig = key.sign(text.encode())
    return f"{text}\n{SIGNATURE_PREFIX}{name} {b64(key_hash(name, key.public) + sig)}\n"


def split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """(text, [(key name, key hash, signature)]) of a signed note."""
    text, sep, sigs = note.rpartition("\n\n")
    if not sep:
        raise NoteError("a signed note has a blank line before its signatures")
    text += "\n"
    out = []
    if not sigs.endswith("\n"):
        raise NoteError("a signature line ends with a newline")
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = unb64(blob, "signature", NoteError)
        if not name or len(raw) < 5:
            raise NoteError("a signature line names a key and carries a key hash and signature")
        out.append((name, raw[:4], raw[4:]))
    return text, out


def verify_note(note: str, keys: Sequence[tuple[str, Ed25519PublicKey]]) -> tuple[str, str]:
    """(text, name of the key that verified it); NoteError unless one of ``keys`` signed it."""
    text, sigs = split_note(note)
    for name, kh, sig in sigs:
        for kname, pub in keys:
            if kname != name or key_hash(name, raw_public(pub)) != kh:
                continue
            try:
                pub.verify(sig, text.encode())
            except InvalidSignature:
                raise NoteError(f"the signature of {name} does not verify") from None
            return text, name
    raise NoteError("no signature by a trusted key")


def accountability_keys(trust: TrustStore) -> list[TrustedKey]:
    return [k for k in trust.keys.values() if k.service == SIGNER]


def verify_checkpoint(note: str, trust: TrustStore, origin: str) -> GongkaiCheckpoint:
    """The checkpoint of ``note`` if accountability's trusted key signed it for ``origin``.

    A rotated key verifies only checkpoints it signed before it was retired (by their time).
    """
    keys = accountability_keys(trust)
    text, name = verify_note(note, [(key_name(SIGNER), k.public) for k in keys])
    cp = Checkpoint.parse(text)
    if cp.origin != origin:
        raise NoteError(f"a checkpoint of {cp.origin!r}, not of {origin!r}")
    g = GongkaiCheckpoint.of(cp)
    _, sigs = split_note(note)
    kh = next(h for n, h, _ in sigs if n == name)
    key = next(k for k in keys if key_hash(name, raw_public(k.public)) == kh)
    if key.retired_after is not None and g.at > key.retired_after:
        raise NoteError(f"signed {g.at.isoformat()} with key {key.key_id}, retired before")
    return g
