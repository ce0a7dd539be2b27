"""Work done by a forked copy of this process, its results handed back item by item.

The rebuild's write (``AccountabilityProjection.write_all``) runs after the fold, in one
process: encoding every row is Python, bound to one core, while the machine's other core sits
idle (the reader process and the nats-server are done by then). A forked child sees the folded
rows as they are, copy-on-write, with nothing pickled on the way there; it encodes its share and
hands back only what SQLite takes (tuples of strings), while this process encodes and inserts
the rest and then what the child sent. SQLite is written by this process alone.

The rules:

* ``Forked(work)`` forks at once: ``work()`` runs in the child and each item it yields is
  pickled into a file in memory shared with this process and announced in order on a pipe,
  then an end marker; the child runs ahead as far as it likes (the file holds what this
  process has not read yet, freed at ``close``). Fork before any thread of this process
  holds a lock the child's work needs (the child runs ``work`` and pickles; it touches no
  socket, file or database of the parent's, and ends with ``os._exit``: no ``atexit``, no
  buffered output written twice).
* ``take`` returns the next item, or ``DONE`` after the last; a child that raised, was killed
  or ended without its end marker raises ``HelperError`` (the caller's transaction rolls back:
  never a write with part of the rows). ``ready`` says whether ``take`` would return at once.
* ``close`` always ends the child (killed if still running) and reaps it; after ``DONE`` it
  also checks that the child exited cleanly.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import tempfile
from collections.abc import Callable, Iterable
from typing import Any, Final

#: What ``take`` returns after the child's last item.
DONE: Final = object()

#: An item's place in the child's file: offset, length.
_NOTE = struct.Struct(">QQ")
_ITEM, _END, _ERROR = 0, 1, 2


class HelperError(Exception):
    """The forked child failed, or ended before it said it had finished."""


class Forked:
    """A forked child running ``work()``; its items read back as they come (``take``)."""

    def __init__(self, work: Callable[[], Iterable[Any]]) -> None:
        # The items go into a file in memory (tempfile's where there is no memfd), each one's
        # place announced on a pipe: the child never waits for this process to read (a chunk
        # of posts is tens of megabytes, a pipe holds 64 KB), and this process needs no thread
        # to drain it (one re-taking the GIL after every pipe read slowed both sides).
        self._store = _memory_file()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child ends with os._exit; its items are tested
            os.close(read_end)
            _child(self._store, write_end, work)
        os.close(write_end)
        self.pid = pid
        # Read unbuffered: a buffer reading ahead would hold announcements that ``ready``
        # (a select on the descriptor) cannot see, and the child's chunks would wait.
        self._notes = read_end
        self._exited: int | None = None
        self._finished = False
        self._closed = False

    def ready(self) -> bool:
        """Whether ``take`` would return without waiting for the child."""
        if self._finished or self._closed:
            return True
        return bool(select.select([self._notes], [], [], 0)[0])

    def take(self) -> Any:
        """The child's next item; ``DONE`` after its last. Raises ``HelperError`` if it failed."""
        if self._finished:
            return DONE
        if self._closed:
            raise HelperError("the forked helper was closed before it finished")
        note = b""
        while len(note) < _NOTE.size and (more := os.read(self._notes, _NOTE.size - len(note))):
            note += more
        if len(note) < _NOTE.size:
            raise HelperError(f"the forked helper ended before finishing ({self._reap()})")
        offset, size = _NOTE.unpack(note)
        data = os.pread(self._store, size, offset)
        while len(data) < size:  # a short read of a file is rare, not an end
            more = os.pread(self._store, size - len(data), offset + len(data))
            if not more:
                raise HelperError("the forked helper's items are shorter than announced")
            data += more
        kind, item = pickle.loads(data)  # noqa: S301 - our own fork
        if kind == _ERROR:
            raise HelperError(f"the forked helper failed: {item}")
        if kind == _END:
            self._finished = True
            self.close()
            return DONE
        return item

    def close(self) -> None:
        """End the child (killed if still running), reap it, free what it wrote. After the
        end marker, a child that did not exit with 0 raises ``HelperError``."""
        if not self._closed:
            self._closed = True
            if self._exited is None and not self._finished:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            self._reap()
            os.close(self._notes)
            os.close(self._store)
        if self._finished and self._exited != 0:
            raise HelperError(f"the forked helper {self._describe()} after finishing")

    def _reap(self) -> str:
        if self._exited is None:
            _, status = os.waitpid(self.pid, 0)
            self._exited = os.waitstatus_to_exitcode(status)
        return self._describe()

    def _describe(self) -> str:
        code = self._exited
        if code is not None and code < 0:
            return f"was killed by signal {-code}"
        return f"exited with {code}"


def _memory_file() -> int:
    with contextlib.suppress(AttributeError, OSError):  # not Linux: a temporary file
        return os.memfd_create("gongkai-forked", os.MFD_CLOEXEC)
    return os.dup(tempfile.TemporaryFile().fileno())


def _child(store: int, notes: int, work: Callable[[], Iterable[Any]]) -> None:
    """The child: ``work``'s items written to ``store`` and announced on ``notes``, an end
    marker (or the error), then ``os._exit``."""
    code = 1
    offset = 0

    def send(item: object) -> None:
        nonlocal offset
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(store, data, offset)
        _write_all(notes, _NOTE.pack(offset, len(data)))
        offset += len(data)

    try:
        # The parent's event loop may have a signal wakeup descriptor: a signal here must not
        # write to it.
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        for item in work():
            send((_ITEM, item))
        send((_END, None))
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        with contextlib.suppress(BaseException):
            send((_ERROR, f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(code)


def _write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    view = memoryview(data)
    while view:
        if offset is None:
            view = view[os.write(fd, view) :]
        else:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
