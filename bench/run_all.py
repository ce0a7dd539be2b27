"""`make bench`: run every benchmark in bench/ one after another (never two at once)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        mod = importlib.import_module(f"bench.{name}")
        saved = sys.argv
        sys.argv = [name]
        try:
            mod.main()
        except Exception as exc:  # report and go on with the other benchmarks
            failed.append(name)
            print(f"{name} failed: {exc!r}")
        finally:
            sys.argv = saved
        print(f"({time.perf_counter() - t0:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
