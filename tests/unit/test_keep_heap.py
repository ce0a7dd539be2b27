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
    from gongkai.consumer import _Heap, keep_heap

    class Node:
        def __init__(self):
            self.me = self  # a cycle: only the cyclic collector frees it

    # Without keep_heap, a catch-up leaves nothing frozen.
    _Heap.behind()
    assert gc.get_freeze_count() > 0
    _Heap.caught_up()
    assert gc.get_freeze_count() == 0

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
