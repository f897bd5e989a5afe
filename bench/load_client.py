"""A small HTTP load generator for benchmarks: N keep-alive connections for a fixed time, run as its own
process so it does not share the server's event loop. Prints one JSON line of results."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp


async def _hammer(url: str, headers: dict[str, str], concurrency: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000 if latencies else None,
        "statuses": statuses,
    }


def run(
    url: str, headers: dict[str, str] | None = None, concurrency: int = 32, duration: float = 5.0
) -> dict[str, Any]:
    """Load `url` from a separate process and return its figures."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.load_client", url, "--concurrency", str(concurrency),
         "--duration", str(duration), "--headers", json.dumps(headers or {})],
        capture_output=True, text=True, check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--headers", default="{}")
    args = parser.parse_args()
    result = asyncio.run(_hammer(args.url, json.loads(args.headers), args.concurrency, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
