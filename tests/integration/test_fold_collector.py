"""``fold_log`` and the cyclic collector: off for the fold, then the young generations only.

Everything the fold made while the collector was off is still young, so a collection of the
young generations finds the cycles it left; the rest of the process's heap (a service's kept
state, or a test process's) is not walked again for them.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from bench.bench_accountability import post_events
from gongkai.eventlog import EventLog
from gongkai_accountability.adapters.log import fold_log


class _Cycle:
    def __init__(self) -> None:
        self.me = self  # only the cyclic collector frees it


async def test_a_fold_collects_the_cycles_it_left_from_its_young_generations(
    evlog: EventLog,
) -> None:
    await evlog.append_pipelined([(e, None) for i in range(60) for e in post_events(i)])
    left: list[weakref.ref[_Cycle]] = []
    generations: list[int] = []

    def progress(seen: int, total: int) -> None:
        if not gc.isenabled():  # inside the fold, not its last report after it
            left.append(weakref.ref(_Cycle()))

    def watch(phase: str, info: dict[str, Any]) -> None:
        # From the first cycle left on, the collector is off until the fold's own collection.
        if phase == "start" and left:
            generations.append(info["generation"])

    gc.callbacks.append(watch)
    try:
        res = await fold_log(evlog, progress=progress, every=50)
    finally:
        gc.callbacks.remove(watch)
    assert res.events == 240 and len(res.rows.tables["post"]) == 60
    assert gc.isenabled()
    assert left and all(ref() is None for ref in left), "the fold's cycles are collected"
    assert generations[0] == 1, "by a collection of the young generations, not a full one"
