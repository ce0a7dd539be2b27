"""A Merkle tree over the event log, hashed as Certificate Transparency does (RFC 9162 §2.1).

Leaf ``i`` is the event at stream sequence ``i + 1``; its leaf input is the stored message body,
the event's canonical JSON (it names its own type and aggregate, so the subject adds nothing):

    leaf hash  = SHA-256(0x00 || event bytes)
    node hash  = SHA-256(0x01 || left || right)

``Frontier`` computes the root while the log streams past, holding one hash per set bit of the
size (a compact range from leaf 0: O(log n) memory). Proofs are generated from the list of leaf
hashes (RFC 9162 §2.1.3.1, §2.1.4.1) and verified as §2.1.3.2 and §2.1.4.2 describe;
``tools/verify_proof.py`` repeats the two verifications with nothing of gongkai.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

HASH_SIZE = 32
_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify, or a request for one that cannot exist."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


class LeafHashes(Sequence[bytes]):
    """Leaf hashes packed in one bytearray (32 bytes each): a million cost 32 MB, not 80."""

    def __init__(self, packed: bytes | bytearray = b"") -> None:
        if len(packed) % HASH_SIZE:
            raise ValueError("packed leaf hashes are a multiple of 32 bytes")
        self.packed = bytearray(packed)

    def append(self, h: bytes) -> None:
        self.packed += h

    def __len__(self) -> int:
        return len(self.packed) // HASH_SIZE

    def __getitem__(self, i):  # type: ignore[no-untyped-def,override]
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                raise ValueError("only contiguous slices")
            return LeafHashes(self.packed[start * HASH_SIZE : stop * HASH_SIZE])
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return bytes(self.packed[i * HASH_SIZE : (i + 1) * HASH_SIZE])


class Frontier:
    """The roots of the perfect subtrees left of ``size`` (largest first): a compact range.

    Appending a leaf merges as many subtrees as the size has trailing one bits, so a million
    appends cost about a million node hashes in all.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)
        if len(self.hashes) != bin(size).count("1"):
            raise ValueError(f"a frontier of size {size} has {bin(size).count('1')} hashes")

    def append(self, leaf: bytes) -> None:
        h = leaf
        n = self.size
        hashes = self.hashes
        while n & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            n >>= 1
        hashes.append(h)
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = _sha256(b"\x01" + h + r).digest()
        return r

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes], lo: int = 0, hi: int | None = None) -> bytes:
    """MTH(D[lo:hi]) from leaf hashes (RFC 9162 §2.1.1)."""
    hi = len(leaves) if hi is None else hi
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[lo]
    k = _split(n)
    return node_hash(root_of(leaves, lo, lo + k), root_of(leaves, lo + k, hi))


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1): the audit path of leaf ``index``."""
    size = len(leaves) if size is None else size
    if not 0 <= index < size <= len(leaves):
        raise ProofError(f"no leaf {index} in a tree of size {size}")
    path: list[bytes] = []

    def walk(m: int, lo: int, hi: int) -> None:
        n = hi - lo
        if n <= 1:
            return
        k = _split(n)
        if m < k:
            walk(m, lo, lo + k)
            path.append(root_of(leaves, lo + k, hi))
        else:
            walk(m - k, lo + k, hi)
            path.append(root_of(leaves, lo, lo + k))

    walk(index, 0, size)
    return path


def consistency_proof(leaves: Sequence[bytes], old: int, new: int | None = None) -> list[bytes]:
    """PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1): the tree of size ``old`` is a prefix of ``new``."""
    new = len(leaves) if new is None else new
    if not 0 <= old <= new <= len(leaves):
        raise ProofError(f"no consistency proof from size {old} to {new}")
    if old == 0 or old == new:
        return []
    proof: list[bytes] = []

    def sub(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(root_of(leaves, lo, hi))
            return
        k = _split(n)
        if m <= k:
            sub(m, lo, lo + k, complete)
            proof.append(root_of(leaves, lo + k, hi))
        else:
            sub(m - k, lo + k, hi, False)
            proof.append(root_of(leaves, lo, lo + k))

    sub(old, 0, new, True)
    return proof


def _path(fn: int, sn: int, proof: Sequence[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Each hash of ``proof`` with whether it is the left sibling on the way up from node
    ``fn`` of a tree whose last node is ``sn`` (RFC 9162's walk, shared by the inclusion and the
    consistency check); ProofError when the proof and the path differ in length."""
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the path")
        left = bool(fn & 1) or fn == sn
        if left and not fn & 1:
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        yield p, left
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or ProofError."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("a hash has 32 bytes")
    r = leaf
    for p, left in _path(index, size - 1, proof):
        r = node_hash(p, r) if left else node_hash(r, p)
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("the inclusion proof leads to another root")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless the tree (old, old_root) is a prefix of (new, new_root)."""
    if not 0 <= old <= new:
        raise ProofError(f"size {old} is not a prefix of size {new}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("a hash has 32 bytes")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError("equal sizes have equal roots and an empty proof")
        return
    if old == 0:
        if proof:
            raise ProofError("the empty tree's proof is empty")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if old & (old - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c, left in _path(fn, sn, path[1:]):
        if left:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
    if fr != old_root:
        raise ProofError("the proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("the proof does not lead to the new root")
