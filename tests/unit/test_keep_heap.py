"""``keep_heap``: a service's long-lived state out of the cyclic collector's sight, and what a
later catch-up does with it (collects the cycles that died meanwhile, freezes the rest again).

Run in a fresh interpreter: the collector's generations are the process's, and a test worker's
heap (every earlier test's objects) made each full collection take seconds and would stay
frozen for the tests after it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

KEPT = textwrap.dedent(
    """
    import gc, weakref
    from gongkai.consumer import BEHIND_GEN0, _Heap, keep_heap

    class Node:
        def __init__(self):
            self.me = self  # a cycle: only the cyclic collector frees it

    # Without keep_heap, a catch-up leaves nothing frozen.
    before = gc.get_threshold()
    _Heap.behind()
    assert gc.get_freeze_count() > 0
    # Behind, a batch's objects are frozen before a young collection walks them.
    assert gc.get_threshold()[0] == max(before[0], BEHIND_GEN0), gc.get_threshold()
    assert gc.get_threshold()[1:] == before[1:]
    _Heap.behind()  # the next batch: the thresholds to give back stay the first ones
    _Heap.caught_up()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before, "caught up: the collector as it was"
    _Heap.caught_up()  # caught up again (several subscriptions): nothing changes
    assert gc.get_threshold() == before

    node = Node()
    dead = weakref.ref(node)
    keep_heap()
    assert gc.get_freeze_count() > 0
    del node
    gc.collect()
    assert dead() is not None, "frozen: a full collection does not look at it"

    _Heap.behind()  # a burst to catch up on, then caught up
    _Heap.caught_up()
    assert dead() is None, "the cycle that died while frozen is collected once"
    assert gc.get_freeze_count() > 0, "what survived is out of sight again"
    print("ok")
    """
)


def test_kept_state_is_not_walked_until_a_catch_up_and_is_frozen_again() -> None:
    done = subprocess.run(
        [sys.executable, "-c", KEPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
