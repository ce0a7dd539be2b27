"""The log's Merkle tree: RFC 6962 test vectors, and every proof of random trees verifies.

The vectors are the values of transparency-dev/merkle (Apache-2.0): ``testonly/constants.go``
(leaf inputs, node and root hashes for sizes 0..8) and ``proof/verify_test.go`` (inclusion and
consistency proofs; its leaf numbers are 1-based). Only the values are copied here.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gongkai.trust.merkle import (
    EMPTY_ROOT,
    Frontier,
    LeafHashes,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def h(x: str) -> bytes:
    return bytes.fromhex(x)


LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]
LEAF_HASHES = [
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
    h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
    h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
    h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
    h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
]
ROOTS = [  # by tree size, from the empty tree
    EMPTY_ROOT,
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
# (leaf number, 1-based; tree size; audit path)
INCLUSION = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (3, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        2,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]


def test_leaf_hashes_of_the_vectors() -> None:
    assert [leaf_hash(x) for x in LEAF_INPUTS] == LEAF_HASHES


@pytest.mark.parametrize("size", range(9))
def test_roots_of_the_vectors(size: int) -> None:
    assert root_of(LEAF_HASHES[:size]) == ROOTS[size]
    f = Frontier()
    f.extend(LEAF_HASHES[:size])
    assert f.size == size
    assert f.root() == ROOTS[size]
    assert len(f.hashes) == bin(size).count("1")  # O(log n): one hash per set bit


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_inclusion_vectors(leaf: int, size: int, path: list[bytes]) -> None:
    assert inclusion_proof(LEAF_HASHES, leaf - 1, size) == path
    verify_inclusion(leaf - 1, size, LEAF_HASHES[leaf - 1], path, ROOTS[size])
    # What verify_test.go's corruptInclusionProof tries, refused.
    wrong = [
        (leaf - 2, size, LEAF_HASHES[leaf - 1], path, ROOTS[size]),
        (leaf, size, LEAF_HASHES[leaf - 1], path, ROOTS[size]),
        ((leaf - 1) ^ 2, size, LEAF_HASHES[leaf - 1], path, ROOTS[size]),
        (leaf - 1, size * 2, LEAF_HASHES[leaf - 1], path, ROOTS[size]),
        (leaf - 1, size // 2, LEAF_HASHES[leaf - 1], path, ROOTS[size]),
        (leaf - 1, size, leaf_hash(b"WrongLeaf"), path, ROOTS[size]),
        (leaf - 1, size, LEAF_HASHES[leaf - 1], path, EMPTY_ROOT),
        (leaf - 1, size, LEAF_HASHES[leaf - 1], [*path, ROOTS[size]], ROOTS[size]),
        (leaf - 1, size, LEAF_HASHES[leaf - 1], [ROOTS[size], *path], ROOTS[size]),
    ]
    if path:
        wrong.append((leaf - 1, size, LEAF_HASHES[leaf - 1], path[:-1], ROOTS[size]))
        for i in range(len(path)):
            flipped = list(path)
            flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
            wrong.append((leaf - 1, size, LEAF_HASHES[leaf - 1], flipped, ROOTS[size]))
    for args in wrong:
        with pytest.raises(ProofError):
            verify_inclusion(*args)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(LEAF_HASHES, old, new) == proof
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
    if not proof:
        return
    wrong = [
        (old - 1, new, ROOTS[old], ROOTS[new], proof),
        (old + 1, new, ROOTS[old], ROOTS[new], proof),
        (old ^ 2, new, ROOTS[old], ROOTS[new], proof),
        (old, new * 2, ROOTS[old], ROOTS[new], proof),
        (old, new // 2, ROOTS[old], ROOTS[new], proof),
        (old, new, EMPTY_ROOT, ROOTS[new], proof),
        (old, new, ROOTS[old], EMPTY_ROOT, proof),
        (old, new, ROOTS[new], ROOTS[old], proof),
        (old, new, ROOTS[old], ROOTS[new], []),
        (old, new, ROOTS[old], ROOTS[new], [*proof, ROOTS[old]]),
        (old, new, ROOTS[old], ROOTS[new], [ROOTS[new], *proof]),
        (old, new, ROOTS[old], ROOTS[new], [proof[0], *proof]),
        (old, new, ROOTS[old], ROOTS[new], proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        wrong.append((old, new, ROOTS[old], ROOTS[new], flipped))
    for args in wrong:
        with pytest.raises(ProofError):
            verify_consistency(*args)


def test_trivial_consistency() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    with pytest.raises(ProofError):
        verify_consistency(1, 1, ROOTS[1], ROOTS[2], [])
    with pytest.raises(ProofError):
        verify_consistency(2, 1, ROOTS[2], ROOTS[1], [])
    with pytest.raises(ProofError):
        verify_consistency(1, 2, ROOTS[1], ROOTS[2], [])


def test_packed_leaf_hashes() -> None:
    packed = LeafHashes()
    for x in LEAF_HASHES:
        packed.append(x)
    assert len(packed) == 8 and list(packed) == LEAF_HASHES
    assert root_of(packed) == ROOTS[8]
    assert inclusion_proof(packed, 5, 8) == INCLUSION[2][2]
    assert list(packed[2:4]) == LEAF_HASHES[2:4]


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@settings(max_examples=150)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    n, i = case
    leaves = _leaves(n)
    root = root_of(leaves)
    f = Frontier()
    f.extend(leaves)
    assert f.root() == root
    proof = inclusion_proof(leaves, i)
    verify_inclusion(i, n, leaves[i], proof, root)
    assert root_from_inclusion(i, n, leaves[i], proof) == root
    with pytest.raises(ProofError):  # a changed leaf
        verify_inclusion(i, n, leaf_hash(b"changed"), proof, root)
    with pytest.raises(ProofError):  # a wrong size: the proof of size n is none of size n + 1
        verify_inclusion(i, n + 1, leaves[i], proof, root_of([*leaves, leaf_hash(b"x")]))
    if n > 1:
        with pytest.raises(ProofError):  # another leaf's place
            verify_inclusion((i + 1) % n, n, leaves[i], proof, root)


@settings(max_examples=150)
@given(
    st.integers(1, 300).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(1, n), st.integers(0, n - 1))
    )
)
def test_every_consistency_proof_verifies(case: tuple[int, int, int]) -> None:
    new, old, changed = case
    leaves = _leaves(new)
    old_root, new_root = root_of(leaves, 0, old), root_of(leaves)
    proof = consistency_proof(leaves, old)
    verify_consistency(old, new, old_root, new_root, proof)
    if old == new:
        return
    with pytest.raises(ProofError):  # a wrong old size, with that size's root
        wrong = old + 1 if old + 1 < new else old - 1
        verify_consistency(wrong, new, root_of(leaves, 0, wrong), new_root, proof)
    # A history rewritten anywhere: the new tree no longer extends the old one.
    altered = list(leaves)
    altered[changed] = leaf_hash(b"changed")
    if changed < old:
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, root_of(altered), proof)
        with pytest.raises(ProofError):
            verify_consistency(
                old, new, old_root, root_of(altered), consistency_proof(altered, old)
            )
