"""`make bench`: every benchmark in turn, each printing its table and writing bench/results/<name>.json.

Figures are ratios measured within one run (the machine is small and shared); `python -m bench.run NAME...`
runs a subset. BENCH_QUICK=1 runs only the phone's completed audit (on each embedded server) and checklist
serving, with fewer rounds, in minutes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

BENCHMARKS = ["phone_audits", "foundation", "backbone", "checklists", "audits", "photos", "reminders", "history"]
QUICK = ["phone_audits", "checklists"]


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")
    chosen = sys.argv[1:] or (QUICK if quick else BENCHMARKS)
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
