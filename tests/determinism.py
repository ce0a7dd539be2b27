"""What makes ``make test`` deterministic and ``make fuzz`` explore (README, "Determinism").

``make test`` (hypothesis profile "ci", the default): every hypothesis test - and the
schemathesis fuzz test, which draws its cases through hypothesis - generates the same examples
on every run and every machine (derandomize: the seed is a hash of the test function), with no
example database (nothing a previous run left behind changes what runs), and each test's own
``max_examples`` is its fixed budget.

``make fuzz`` (``GONGKAI_FUZZ=1``, profile "fuzz"): fresh examples from the seed
``--hypothesis-seed`` gives (the Makefile draws one and prints it; ``make fuzz SEED=N`` runs
the same examples again), ``FUZZ_FACTOR`` times each test's budget, and only the tests that
generate their input. A failure either finds becomes a named regression test.

tests/conftest.py imports this module first, so the profile is loaded before any test module
builds its ``@settings``; its hooks call the functions here.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

#: ``make fuzz``: explore with a fresh seed and a bigger budget.
FUZZ = os.environ.get("GONGKAI_FUZZ", "") not in ("", "0")
#: How many times each hypothesis test's own max_examples ``make fuzz`` runs.
FUZZ_FACTOR = int(os.environ.get("GONGKAI_FUZZ_FACTOR", "10"))

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False, database=None, print_blob=True)
settings.load_profile("fuzz" if FUZZ else os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pin_source_constants() -> None:
    """Derandomized examples still depended on which modules the process had imported.

    hypothesis (6.131 on) mixes string and number constants found in every loaded module of
    the project into what it draws, a few in a hundred draws; which modules a pytest-xdist
    worker has imported depends on which test files it ran before, so the same test drew other
    examples from one ``make test`` to the next (test_projection_batches found a fold crash in
    two full runs and none alone). Under the "ci" profile the pool stays what it is at start,
    empty: the same examples whatever ran before. ``make fuzz`` keeps them, to explore.
    """
    from hypothesis.internal.conjecture import providers

    # A private name: if hypothesis renames it, fail here rather than lose determinism quietly.
    assert hasattr(providers, "_get_local_constants"), "hypothesis changed: see determinism.py"
    empty = providers._local_constants
    providers._get_local_constants = lambda: empty


if not FUZZ:
    pin_source_constants()


def pytest_report_header(config: pytest.Config) -> str:
    if not FUZZ:
        return "gongkai: hypothesis profile 'ci': derandomized, fixed budgets (make fuzz explores)"
    seed = config.getoption("hypothesis_seed", None)
    return (
        f"gongkai: make fuzz, seed {seed}, {FUZZ_FACTOR}x budgets; "
        f"reproduce a failure with: make fuzz SEED={seed}"
    )


def fuzz_selection(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``make fuzz``: only the tests that generate input, each with a bigger budget."""
    if not FUZZ:
        return
    keep, drop = [], []
    for item in items:
        test = getattr(item, "obj", None)
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if getattr(test, "hypothesis", None) is not None and own is not None:
            # hypothesis reads this attribute when the test runs; @settings may not be applied
            # twice, so the bigger budget goes here.
            test._hypothesis_internal_use_settings = settings(  # type: ignore[union-attr]
                own, max_examples=own.max_examples * FUZZ_FACTOR
            )
            keep.append(item)
        elif item.get_closest_marker("fuzz"):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
