"""`make bench`: every benchmark in turn, each printing its table and writing bench/results/<name>.json.

Figures are ratios measured within one run (the machine is small and shared); `python -m bench.run NAME...`
runs a subset."""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = ["foundation", "backbone", "checklists", "audits", "photos", "reminders", "history"]


def main() -> int:
    chosen = sys.argv[1:] or BENCHMARKS
    failed = []
    for name in chosen:
        print(f"\n=== bench.{name} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"])
        print(f"(bench.{name}: {time.perf_counter() - started:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
