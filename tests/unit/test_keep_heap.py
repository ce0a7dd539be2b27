"""``keep_heap``: a service's long-lived state out of the cyclic collector's sight, and what a
later catch-up does with it (collects the cycles that died meanwhile, freezes the rest again)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gongkai.consumer import _Heap, keep_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


@pytest.fixture
def heap() -> Iterator[None]:
    gc.collect()
    yield
    # the test process goes on: leave nothing out of the collector's sight
    _Heap.kept = False
    _Heap.frozen = False
    gc.unfreeze()


def test_kept_state_is_not_walked_until_a_catch_up_and_is_frozen_again(heap: None) -> None:
    node = Node()
    dead = weakref.ref(node)
    keep_heap()
    assert gc.get_freeze_count() > 0
    del node
    gc.collect()
    assert dead() is not None  # frozen: a full collection does not look at it

    _Heap.behind()  # a burst to catch up on, then caught up
    _Heap.caught_up()
    assert dead() is None  # the cycle that died while frozen is collected once
    assert gc.get_freeze_count() > 0  # and what survived is out of sight again

    alive = Node()
    _Heap.behind()
    _Heap.caught_up()
    assert gc.get_freeze_count() > 0 and alive.me is alive


def test_without_keep_a_catch_up_leaves_nothing_frozen(heap: None) -> None:
    _Heap.behind()
    assert gc.get_freeze_count() > 0
    _Heap.caught_up()
    assert gc.get_freeze_count() == 0
