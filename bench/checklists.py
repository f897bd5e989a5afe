"""Checklist serving benchmark: GET /api/v1/checklists/branch-service throughput for 200 and 304 answers,
each as a ratio to a bare aiohttp handler returning the same bytes in the same run, and the payload size
of branch-service in one language, raw and gzipped.

The API and the bare handler each run in their own process; this process only generates load (a fixed
number of requests at a fixed concurrency over keep-alive connections), so client work is the same for
both and cancels out of the ratio. Throughput on a shared 2-core machine moves with everything else that
runs, so each round also counts the CPU time the serving process spent per request (/proc, Linux): that
figure hardly moves with load, and its ratio is what the throughput ratio tends to when the server is the
bottleneck. Run: .venv/bin/python -m bench.checklists
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import post_json, save, start_api, stop, wait_ready
from server.embedded import EmbeddedMongo, free_port

REQUESTS = 5000
CONCURRENCY = 32
ROUNDS = 3  # interleaved app/bare rounds; the median damps noise from other work on the machine
PATH = "/api/v1/checklists/branch-service"


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far; None where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(pid: int, timeout_s: float = 60.0) -> None:
    """Until the API stops working on its own start-up (demo seeding's events, checklist rendering): below 5%
    of a core for a second, so its background work is not counted against its requests."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        after = cpu_seconds(pid)
        if before is None or after is None or after - before < 0.05:
            return


def _measured(url: str, headers: dict[str, str], pid: int) -> dict[str, Any]:
    """One round of load, with the serving process's CPU microseconds per request."""
    before = cpu_seconds(pid)
    result = asyncio.run(_load(url, headers, REQUESTS, CONCURRENCY))
    after = cpu_seconds(pid)
    result["cpu_us"] = (after - before) / REQUESTS * 1e6 if before is not None and after is not None else None
    return result


async def _load(url: str, headers: dict[str, str], requests: int, concurrency: int) -> dict[str, Any]:
    """`requests` GETs over `concurrency` keep-alive connections; throughput and latency."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers, auto_decompress=False) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50_ms": statistics.median(latencies) * 1000,
            "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000, "statuses": statuses}


def serve_bare(port: int, body_file: Path) -> None:
    """The baseline: same bytes, same ETags and encodings, none of the API's work (auth, negotiation)."""
    renderings = json.loads(body_file.read_text())
    body = bytes.fromhex(renderings["body"])
    gzipped = bytes.fromhex(renderings["gzipped"])
    etag, etag_gzip = renderings["etag"], renderings["etag_gzip"]

    async def handler(request: web.Request) -> web.Response:
        use_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
        headers = {"ETag": etag_gzip if use_gzip else etag}
        if request.headers.get("If-None-Match") in (etag, etag_gzip):
            return web.Response(status=304, headers=headers)
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=gzipped if use_gzip else body, headers=headers, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _fetch(url: str, headers: dict[str, str]) -> tuple[bytes, str]:
    async with aiohttp.ClientSession(auto_decompress=False) as session, session.get(url, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"GET {url} answered {resp.status}")
        return await resp.read(), resp.headers["ETag"]


def _handler_microseconds(body: bytes, gzipped: bytes, etag: str, etag_gzip: str) -> dict[str, float]:
    """Microseconds per request of the serving step alone, on a mocked request (no network, no auth)."""
    from aiohttp.test_utils import make_mocked_request

    from server.checklists.serving import Prepared, Rendering, respond

    rendering = Rendering(body, gzipped, etag, etag_gzip)
    prepared = Prepared("zh-CN", {"zh-CN": rendering, "en": rendering, "es": rendering})
    cases = {
        "200 gzip": {"Accept-Encoding": "gzip, deflate", "Accept-Language": "es-MX,es;q=0.9,en;q=0.5"},
        "304": {"Accept-Encoding": "gzip", "Accept-Language": "es-MX,es;q=0.9", "If-None-Match": etag_gzip},
    }
    timings: dict[str, float] = {}
    for name, headers in cases.items():
        request = make_mocked_request("GET", PATH, headers=headers)
        rounds = 20_000
        started = time.perf_counter()
        for _ in range(rounds):
            respond(request, prepared, None, immutable=False)
        timings[name] = round((time.perf_counter() - started) / rounds * 1e6, 2)
    return timings


def _figure(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    db = EmbeddedMongo(":memory:")
    db.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-checklists-"))
    api = bare = None
    try:
        api, port = start_api(db.uri, tmp / "var", extra_env={"SEED_DEMO": "true", "PUBLISH_CHECKLISTS": "true"})
        base = f"http://127.0.0.1:{port}"
        creds = json.loads((tmp / "var" / "demo-credentials.json").read_text())["inspector"]
        token = post_json(f"{base}/api/v1/auth/login", creds)["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        sizes: dict[str, dict[str, int]] = {}
        for language in ("zh-CN", "en", "es"):
            raw, _ = asyncio.run(_fetch(f"{base}{PATH}?lang={language}", {**auth, "Accept-Encoding": "identity"}))
            sizes[language] = {"raw_bytes": len(raw), "gzip_bytes": len(gzip.compress(raw, 9, mtime=0))}
        body, etag = asyncio.run(_fetch(base + PATH, {**auth, "Accept-Encoding": "identity"}))
        gzipped, etag_gzip = asyncio.run(_fetch(base + PATH, {**auth, "Accept-Encoding": "gzip"}))
        all_languages = len((Path(__file__).resolve().parents[1] / "checklists" / "branch-service.yaml").read_bytes())

        body_file = tmp / "branch-service.json"
        body_file.write_text(json.dumps({"body": body.hex(), "gzipped": gzipped.hex(), "etag": etag,
                                         "etag_gzip": etag_gzip}))
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "bench.checklists", "--bare", str(bare_port), str(body_file)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(f"http://127.0.0.1:{bare_port}/")

        scenarios = {
            "200 gzip": {**auth, "Accept-Encoding": "gzip"},
            "200 identity": {**auth, "Accept-Encoding": "identity"},
            "304": {**auth, "Accept-Encoding": "gzip", "If-None-Match": etag_gzip},
        }
        targets = {"api": (base + PATH, api.pid), "bare": (f"http://127.0.0.1:{bare_port}{PATH}", bare.pid)}
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {"api": [], "bare": []} for s in scenarios}
        wait_until_quiet(api.pid)
        # The floor every authenticated endpoint shares (token check plus user and session reads):
        # how much of the gap to the bare handler is authentication rather than checklist serving.
        me = [_measured(f"{base}/api/v1/me", auth, api.pid) for _ in range(ROUNDS)]
        for scenario, headers in scenarios.items():
            for url, _ in targets.values():
                asyncio.run(_load(url, headers, 200, CONCURRENCY))  # warm-up: connections and rendering caches
            for _ in range(ROUNDS):
                for target, (url, pid) in targets.items():
                    runs[scenario][target].append(_measured(url, headers, pid))

        throughput: dict[str, Any] = {}
        for scenario, by_target in runs.items():
            row: dict[str, Any] = {}
            for target, results in by_target.items():
                expected = 304 if scenario == "304" else 200
                if any(set(r["statuses"]) != {expected} for r in results):
                    raise RuntimeError(f"{scenario} {target}: unexpected statuses {[r['statuses'] for r in results]}")
                row[f"{target}_rps"] = round(statistics.median(r["rps"] for r in results), 1)
                row[f"{target}_p50_ms"] = round(statistics.median(r["p50_ms"] for r in results), 2)
                row[f"{target}_p95_ms"] = round(statistics.median(r["p95_ms"] for r in results), 2)
                cpu = [r["cpu_us"] for r in results if r["cpu_us"] is not None]
                row[f"{target}_cpu_us_per_request"] = round(statistics.median(cpu), 1) if cpu else None
            row["ratio"] = round(row["api_rps"] / row["bare_rps"], 3)
            if row["api_cpu_us_per_request"] and row["bare_cpu_us_per_request"]:
                row["cpu_ratio"] = round(row["bare_cpu_us_per_request"] / row["api_cpu_us_per_request"], 3)
            throughput[scenario] = row

        me_rps = round(statistics.median(r["rps"] for r in me), 1)
        me_cpu = [r["cpu_us"] for r in me if r["cpu_us"] is not None]
        for row in throughput.values():
            row["ratio_to_authenticated_me"] = round(row["api_rps"] / me_rps, 3)
        handler_us = _handler_microseconds(body, gzipped, etag, etag_gzip)
        figures = {
            "requests_per_round": REQUESTS, "concurrency": CONCURRENCY, "rounds": ROUNDS,
            "throughput": throughput, "authenticated_me_rps": me_rps,
            "authenticated_me_cpu_us_per_request": round(statistics.median(me_cpu), 1) if me_cpu else None,
            "load_average_1m": round(os.getloadavg()[0], 2), "serving_work_us": handler_us,
            "payload": {"one_language": sizes, "yaml_all_languages_bytes": all_languages},
        }
        save("checklists", figures)
        print(f"GET {PATH}  ({REQUESTS} requests x {ROUNDS} rounds, concurrency {CONCURRENCY}, median)")
        print(f"  {'answer':<14}{'api req/s':>11}{'bare req/s':>12}{'ratio':>8}{'api p50 ms':>12}{'api p95 ms':>12}"
              f"{'api CPU us':>12}{'bare CPU us':>13}{'CPU ratio':>11}")
        for scenario, row in throughput.items():
            print(f"  {scenario:<14}{row['api_rps']:>11.0f}{row['bare_rps']:>12.0f}{row['ratio']:>8.2f}"
                  f"{row['api_p50_ms']:>12.1f}{row['api_p95_ms']:>12.1f}{_figure(row['api_cpu_us_per_request']):>12}"
                  f"{_figure(row['bare_cpu_us_per_request']):>13}{_figure(row.get('cpu_ratio'), 2):>11}")
        print(f"  (CPU us: the serving process's CPU time per request; load average {os.getloadavg()[0]:.1f})")
        print(f"  GET /api/v1/me (authentication floor): {me_rps:.0f} req/s, "
              f"{_figure(figures['authenticated_me_cpu_us_per_request'])} CPU us; checklist/me ratios: "
              + ", ".join(f"{k} {r['ratio_to_authenticated_me']:.2f}" for k, r in throughput.items()))
        print("  in-process serving work per request (negotiate, compare ETag, build response): "
              + ", ".join(f"{k} {v:.1f} us" for k, v in handler_us.items()))
        print("branch-service payload, one language")
        print(f"  {'language':<10}{'raw bytes':>11}{'gzip bytes':>12}")
        for language, size in sizes.items():
            print(f"  {language:<10}{size['raw_bytes']:>11}{size['gzip_bytes']:>12}")
        print(f"  (the YAML source with all three languages: {all_languages} bytes)")
    finally:
        if bare is not None:
            stop(bare)
        if api is not None:
            stop(api)
        db.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "BODY_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(int(args.bare[0]), Path(args.bare[1]))
    else:
        main()
