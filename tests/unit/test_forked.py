"""``adapters.forked``: a forked child's items come back in order, and a child that fails, dies
or ends early is an error here, never a short result; the child is reaped either way."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from gongkai_accountability.adapters.forked import DONE, Forked, HelperError


def _gone(pid: int) -> bool:
    """Whether ``pid`` is no longer a child of this process to reap."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _fds() -> int:
    """Descriptors open in this process (Linux), or 0 where that is not known."""
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def _all(helper: Forked) -> list[object]:
    out = []
    while (item := helper.take()) is not DONE:
        out.append(item)
    return out


def test_the_childs_items_come_back_in_order_and_the_child_is_reaped() -> None:
    # Made before the fork and read in the child: what it sees is this process's memory.
    rows = {f"k{i}": "x" * i for i in range(300)}

    def work() -> Iterator[tuple[str, list[tuple[str, int]]]]:
        keys = sorted(rows)
        for start in range(0, len(keys), 7):
            yield "chunk", [(k, len(rows[k])) for k in keys[start : start + 7]]

    helper = Forked(work)
    got = _all(helper)
    assert [p for _, chunk in got for p in chunk] == sorted((k, len(v)) for k, v in rows.items())
    assert helper.take() is DONE and helper.ready()
    helper.close()  # again: nothing left to do
    assert _gone(helper.pid)


def test_large_items_do_not_wait_for_this_process_to_read() -> None:
    """The child runs to its end before anything is read here (each item is far more than a
    pipe holds)."""
    helper = Forked(lambda: (bytes([i]) * 1_000_000 for i in range(8)))
    # The child finished without a reader (waited for, left for the helper to reap).
    done = os.waitid(os.P_PID, helper.pid, os.WEXITED | os.WNOWAIT)
    assert done is not None and done.si_status == 0
    assert [item[:1] for item in _all(helper)] == [bytes([i]) for i in range(8)]


def test_an_error_in_the_child_is_raised_here() -> None:
    def work() -> Iterator[int]:
        yield 1
        raise ValueError("row 2 cannot be encoded")

    helper = Forked(work)
    try:
        assert helper.take() == 1
        with pytest.raises(HelperError, match="ValueError: row 2 cannot be encoded"):
            helper.take()
    finally:
        helper.close()
    assert _gone(helper.pid)


def test_a_child_that_dies_or_ends_early_is_an_error_not_an_end() -> None:
    def killed() -> Iterator[int]:
        yield 1
        os.kill(os.getpid(), signal.SIGKILL)
        yield 2

    def ended() -> Iterator[int]:
        yield 1
        os._exit(0)

    for work, said in ((killed, "killed by signal 9"), (ended, "exited with 0")):
        fds = _fds()
        helper = Forked(work)
        try:
            assert helper.take() == 1
            with pytest.raises(HelperError, match=f"ended before finishing.*{said}"):
                helper.take()
        finally:
            helper.close()
        assert _gone(helper.pid)
        assert _fds() == fds  # its pipe and its file closed


def test_closing_early_ends_a_child_still_running() -> None:
    def endless() -> Iterator[int]:
        n = 0
        while True:
            n += 1
            yield n

    helper = Forked(endless)
    assert helper.take() == 1
    helper.close()  # the caller failed or stopped: the child is killed and reaped
    assert _gone(helper.pid)


def test_an_item_announced_is_ready_while_the_child_still_runs() -> None:
    """``ready`` sees every item the child has announced, the ones after the first read too
    (a buffered read of the announcements hid them: fails on e462e4b)."""
    reached_r, reached_w = os.pipe()
    gate_r, gate_w = os.pipe()

    def work() -> Iterator[int]:
        yield 1
        yield 2
        os.write(reached_w, b"x")  # both items announced
        os.read(gate_r, 1)  # held here until the test has looked
        yield 3

    helper = Forked(work)
    try:
        assert os.read(reached_r, 1) == b"x"
        assert helper.take() == 1
        assert helper.ready()
        assert helper.take() == 2
        os.write(gate_w, b"x")
        assert _all(helper) == [3]
    finally:
        helper.close()
        for fd in (reached_r, reached_w, gate_r, gate_w):
            os.close(fd)
    assert _gone(helper.pid)
