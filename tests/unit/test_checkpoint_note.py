"""Checkpoints as C2SP signed notes: the text, the signature line, and what breaks them."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gongkai.trust.checkpoint import (
    Checkpoint,
    NoteError,
    checkpoint_text,
    key_hash,
    key_name,
    sign_note,
    split_note,
    verifier_key,
    verify_checkpoint,
)
from gongkai.trust.keys import ServiceKey, TrustStore
from gongkai.trust.merkle import inclusion_proof, leaf_hash, root_of

AT = datetime(2026, 3, 2, 8, tzinfo=UTC)
ORIGIN = "gongkai/GONGKAI"


def note_of(key: ServiceKey, size: int = 3) -> tuple[str, list[bytes]]:
    leaves = [leaf_hash(bytes([i])) for i in range(size)]
    text = checkpoint_text(
        ORIGIN, size, root_of(leaves), at=AT, first=1, tile=b"".join(leaves), rejected=[2]
    )
    return sign_note(text, key), leaves


def test_the_note_is_a_tlog_checkpoint_with_one_ed25519_signature() -> None:
    key = ServiceKey.generate("accountability")
    note, leaves = note_of(key)
    lines = note.split("\n")
    assert lines[:3] == [ORIGIN, "3", base64.b64encode(root_of(leaves)).decode()]
    assert lines[3] == "gongkai-time 2026-03-02T08:00:00Z"
    assert lines[4].startswith("gongkai-tile 1 ") and lines[5].startswith("gongkai-rejected 1 ")
    assert lines[6] == "" and lines[7].startswith("\u2014 gongkai-accountability ")
    assert note.endswith("\n") and lines[8] == ""
    # key hash = SHA-256(name || "\n" || 0x01 || public key)[:4], before the 64-byte signature
    blob = base64.b64decode(lines[7].split(" ")[2])
    want = hashlib.sha256(b"gongkai-accountability\n\x01" + key.public).digest()[:4]
    assert blob[:4] == want == key_hash(key_name(), key.public) and len(blob) == 68
    text, sigs = split_note(note)
    assert Checkpoint.parse(text).size == 3 and sigs[0][0] == "gongkai-accountability"


def test_only_accountabilitys_trusted_key_verifies() -> None:
    key = ServiceKey.generate("accountability")
    trust = TrustStore()
    trust.add(key)
    note, _ = note_of(key)
    assert verify_checkpoint(note, trust, ORIGIN).checkpoint.size == 3
    with pytest.raises(NoteError):  # another origin
        verify_checkpoint(note, trust, "gongkai/OTHER")
    with pytest.raises(NoteError):  # a changed size
        verify_checkpoint(note.replace("\n3\n", "\n4\n", 1), trust, ORIGIN)
    other = ServiceKey.generate("accountability")
    with pytest.raises(NoteError):  # a key nobody trusts
        verify_checkpoint(note_of(other)[0], trust, ORIGIN)
    review = ServiceKey.generate("review")
    trust.add(review)
    forged = sign_note(split_note(note)[0], review, key_name("accountability"))
    with pytest.raises(NoteError):  # another service's trusted key, under accountability's name
        verify_checkpoint(forged, trust, ORIGIN)
    trust.retire(key.key_id, AT - timedelta(minutes=1))
    with pytest.raises(NoteError, match="retired"):
        verify_checkpoint(note, trust, ORIGIN)


def test_the_standalone_verifier_agrees() -> None:
    path = Path(__file__).resolve().parents[2] / "tools" / "verify_proof.py"
    spec = importlib.util.spec_from_file_location("verify_proof", path)
    assert spec is not None and spec.loader is not None
    vp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vp)
    key = ServiceKey.generate("accountability")
    note, leaves = note_of(key, 5)
    doc = {
        "type": "inclusion",
        "checkpoint": note,
        "tree_size": 5,
        "leaf_index": 3,
        "event": base64.b64encode(bytes([3])).decode(),
        "proof": [base64.b64encode(h).decode() for h in inclusion_proof(leaves, 3)],
    }
    vkey = verifier_key(key_name(), key.public)
    assert "leaf 3" in vp.verify(doc, vp.parse_vkey(vkey), ORIGIN)
    with pytest.raises(vp.Invalid):
        vp.verify({**doc, "leaf_index": 2}, vp.parse_vkey(vkey), ORIGIN)
    with pytest.raises(vp.Invalid):
        other = ServiceKey.generate("accountability")
        vp.verify(doc, vp.parse_vkey(verifier_key(key_name(), other.public)), ORIGIN)
