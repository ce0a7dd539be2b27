"""Batch signatures: one Ed25519 signature over a Merkle root, each event with its audit path.

Given events signed together by ``ServiceKey.sign_events``, when a reader checks them with
``TrustStore.check``: every genuine event verifies — alone in a fresh store, or after others of
its batch in any order — and no change to an event's bytes, subject, place or path does. The
tree is RFC 9162's (the same root and paths as ``gongkai.trust.merkle``), so a subscriber can
check an event with any Certificate Transparency code.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gongkai.trust import merkle
from gongkai.trust.keys import (
    BATCH_MAX,
    HDR_BATCH,
    HDR_PATH,
    HDR_SIG,
    IntegrityError,
    ServiceKey,
    TrustStore,
    batch_message,
    batch_tree,
    event_leaf,
)

KEY = ServiceKey.generate("review")
TYPE = "ReviewSigned"


def store() -> TrustStore:
    ts = TrustStore()
    ts.add(KEY)
    return ts


def batch(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    rnd = random.Random(seed)
    return [(f"gk.ev.post.p{i}.{TYPE}", rnd.randbytes(40 + i % 7)) for i in range(n)]


def refused(ts: TrustStore, subject: str, data: bytes, hdr: dict[str, str]) -> str:
    with pytest.raises(IntegrityError) as exc:
        ts.check(subject, data, hdr, TYPE)
    return exc.value.check


@pytest.mark.parametrize("n", [*range(1, 20), 31, 32, 33, 100, BATCH_MAX - 1, BATCH_MAX])
def test_the_batch_tree_is_rfc_9162s(n: int) -> None:
    leaves = [event_leaf(s, d) for s, d in batch(n)]
    root, paths = batch_tree(leaves)
    assert root == merkle.root_of(leaves)
    for i, path in enumerate(paths):
        assert path == merkle.inclusion_proof(leaves, i)
        merkle.verify_inclusion(i, n, leaves[i], path, root)


def test_the_signature_covers_the_root_and_the_size() -> None:
    items = batch(5)
    hdrs = KEY.sign_events(items)
    root, _ = batch_tree([event_leaf(s, d) for s, d in items])
    sig = base64.b64decode(hdrs[0][HDR_SIG])
    KEY.private.public_key().verify(sig, batch_message(5, root))
    assert {h[HDR_SIG] for h in hdrs} == {hdrs[0][HDR_SIG]}
    assert [h[HDR_BATCH] for h in hdrs] == [f"{i}/5" for i in range(5)]


def test_one_event_is_signed_alone_and_a_long_burst_in_batches() -> None:
    (single,) = KEY.sign_events(batch(1))
    assert HDR_BATCH not in single and HDR_PATH not in single
    hdrs = KEY.sign_events(batch(BATCH_MAX * 2 + 1))
    assert len({h[HDR_SIG] for h in hdrs}) == 3
    assert HDR_BATCH not in hdrs[-1]  # the lone last one: a direct signature


@pytest.mark.parametrize("n", [2, 3, 7, 64, BATCH_MAX])
def test_every_event_verifies_alone_and_in_any_order(n: int) -> None:
    items = batch(n)
    hdrs = KEY.sign_events(items)
    for (s, d), h in zip(items, hdrs, strict=True):
        assert store().check(s, d, h, TYPE).key_id == KEY.key_id
    order = list(range(n))
    random.Random(n).shuffle(order)
    ts = store()
    for i in order:
        ts.check(*items[i], hdrs[i], TYPE)


def _altered_body(s: str, d: bytes, h: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
    return s, d + b" ", h


def _moved(s: str, d: bytes, h: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
    return s.replace("post.p", "post.q"), d, h


def _other_place(s: str, d: bytes, h: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
    i, n = h[HDR_BATCH].split("/")
    return s, d, {**h, HDR_BATCH: f"{(int(i) + 1) % int(n)}/{n}"}


def _other_size(s: str, d: bytes, h: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
    i, n = h[HDR_BATCH].split("/")
    return s, d, {**h, HDR_BATCH: f"{i}/{int(n) + 1}"}


def _path(change: Callable[[bytes], bytes]) -> Callable[..., tuple[str, bytes, dict[str, str]]]:
    def alter(s: str, d: bytes, h: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
        path = change(base64.b64decode(h[HDR_PATH]))
        return s, d, {**h, HDR_PATH: base64.b64encode(path).decode()}

    return alter


TAMPERINGS = {
    "a body altered after signing": _altered_body,
    "a body moved under another subject": _moved,
    "another place in the batch": _other_place,
    "another batch size": _other_size,
    "a sibling hash replaced": _path(lambda p: bytes(32) + p[32:]),
    "a path one hash too long": _path(lambda p: p + bytes(32)),
    "a path one hash too short": _path(lambda p: p[:-32]),
    "a path cut mid-hash": _path(lambda p: p[:-1]),
    "no path": lambda s, d, h: (s, d, {k: v for k, v in h.items() if k != HDR_PATH}),
    "a place that is not a number": lambda s, d, h: (s, d, {**h, HDR_BATCH: "x/y"}),
    "a place outside the batch": lambda s, d, h: (s, d, {**h, HDR_BATCH: "9/9"}),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
@pytest.mark.parametrize("warm", [False, True], ids=["fresh reader", "after the batch"])
def test_no_tampering_verifies(name: str, warm: bool) -> None:
    """Given a batch of 13, when one event is tampered with, then it is refused — also when
    the reader has already proven every genuine event of that batch (its cache of nodes)."""
    items = batch(13)
    hdrs = KEY.sign_events(items)
    for i in range(13):
        ts = store()
        if warm:
            for (s, d), h in zip(items, hdrs, strict=True):
                ts.check(s, d, h, TYPE)
        s, d, h = TAMPERINGS[name](*items[i], hdrs[i])
        if (s, d, h) == (*items[i], hdrs[i]):
            continue
        assert refused(ts, s, d, h) == "bad_signature", (name, i)


def test_a_batch_signature_does_not_carry_over_to_another_batch() -> None:
    """Given two batches, an event of one presented with the other's signature fails."""
    a, b = batch(8, seed=1), batch(8, seed=2)
    ha, hb = KEY.sign_events(a), KEY.sign_events(b)
    ts = store()
    for (s, d), h in zip(a, ha, strict=True):
        ts.check(s, d, h, TYPE)
    assert refused(ts, *b[3], {**hb[3], HDR_SIG: ha[3][HDR_SIG]}) == "bad_signature"


def test_another_key_with_the_same_signature_text_is_refused() -> None:
    stranger = ServiceKey.generate("review")
    items = batch(4)
    hdrs = stranger.sign_events(items)
    assert refused(store(), *items[0], hdrs[0]) == "unknown_key"


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, BATCH_MAX),
    victim=st.integers(0, BATCH_MAX - 1),
    flip=st.integers(0, 10_000),
    order_seed=st.integers(0, 2**16),
)
def test_one_flipped_bit_anywhere_in_an_event_is_refused(
    n: int, victim: int, flip: int, order_seed: int
) -> None:
    """Invariant: after any genuine events of the batch, a bit flipped in one event's bytes
    or audit path is never believed."""
    items = batch(n, seed=n)
    hdrs = KEY.sign_events(items)
    victim %= n
    ts = store()
    order = list(range(n))
    random.Random(order_seed).shuffle(order)
    for i in order[: order_seed % n]:
        ts.check(*items[i], hdrs[i], TYPE)
    s, d = items[victim]
    path = bytearray(base64.b64decode(hdrs[victim][HDR_PATH]))
    body = bytearray(d)
    target = body if flip % 2 or not path else path
    target[(flip // 2) % len(target)] ^= 1 << (flip % 8)
    hdr = {**hdrs[victim], HDR_PATH: base64.b64encode(bytes(path)).decode()}
    assert refused(ts, s, bytes(body), hdr) == "bad_signature"
