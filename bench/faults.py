"""`make faults`: crash and pause processes of `branch-audit serve --workers 2` while phones, branch heads and
compliance keep working, then prove nothing acknowledged was lost or duplicated and the service recovered.

Timeline: baseline load; SIGKILL the embedded database (the supervisor restarts it); SIGKILL one of the two
workers (the supervisor replaces it); SIGSTOP the database for 30 s, then SIGCONT; recovery; then a fresh
short load that must succeed. Responses are counted by status per phase; every 503 must be problem+json with
Retry-After; no 500s; no request may outlast the client timeout. Webhook deliveries go to a local receiver.
Writes bench/results/faults.json."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import save
from bench.load import Server, _post, login, prepare
from bench.phones import API, Behaviour, Ledger, PhotoMaker, Stats, World, consistency, consistency_table, run_personas
from server.embedded import free_port


def readyz(base: str, timeout: float = 5.0) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=timeout) as resp:  # noqa: S310 - loopback only
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = 0
    return status, time.perf_counter() - started


async def wait_ready(base: str, limit_s: float = 120.0) -> float:
    began = time.monotonic()
    while time.monotonic() - began < limit_s:
        status, _ = await asyncio.to_thread(readyz, base, 3.0)
        if status == 200:
            return time.monotonic() - began
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{base} not ready after {limit_s}s")


class Receiver:
    """A webhook endpoint that counts deliveries per event id (at-least-once: repeats are counted apart)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.seen: Counter[str] = Counter()
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def hook(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen[request.headers.get("webhook-id", "?")] += 1
        return web.Response(status=204)

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


class Faults:
    """The fault script, run next to the load; records what happened when."""

    def __init__(self, server: Server, stats: Stats, baseline_s: float, pause_s: float) -> None:
        self.server = server
        self.stats = stats
        self.baseline_s = baseline_s
        self.pause_s = pause_s
        self.timeline: list[dict[str, Any]] = []
        self.readyz_during_pause: Counter[str] = Counter()
        self.slowest_readyz_during_pause = 0.0

    def note(self, phase: str, **facts: Any) -> None:
        self.stats.phase = phase
        entry = {"phase": phase, "t_s": round(time.perf_counter() - self.stats.started, 1), **facts}
        self.timeline.append(entry)
        print(f"  [{entry['t_s']:>6.1f}s] {phase} {facts or ''}", flush=True)

    async def run(self) -> None:
        base = self.server.base
        self.note("baseline")
        await asyncio.sleep(self.baseline_s)

        state = self.server.run_state()
        self.note("db SIGKILL", db_pid=state["db_pid"])
        os.kill(int(state["db_pid"]), signal.SIGKILL)
        await asyncio.sleep(0.5)
        recovered = await wait_ready(base)
        new_pid = self.server.run_state()["db_pid"]
        self.note("after db restart", ready_after_s=round(recovered + 0.5, 1), new_db_pid=new_pid,
                  restarted=new_pid != state["db_pid"])
        await asyncio.sleep(10)

        workers = list(self.server.run_state()["worker_pids"])
        self.note("worker SIGKILL", worker_pid=workers[0])
        os.kill(int(workers[0]), signal.SIGKILL)
        began = time.monotonic()
        replaced = None
        while time.monotonic() - began < 60:
            current = list(self.server.run_state()["worker_pids"])
            if workers[0] not in current and len(current) == 2:
                replaced = round(time.monotonic() - began, 1)
                break
            await asyncio.sleep(0.2)
        self.note("after worker replaced", replaced_after_s=replaced)
        await asyncio.sleep(8)

        db_pid = int(self.server.run_state()["db_pid"])
        self.note(f"db SIGSTOP {self.pause_s:.0f}s", db_pid=db_pid)
        os.kill(db_pid, signal.SIGSTOP)
        try:
            until = time.monotonic() + self.pause_s
            while time.monotonic() < until:
                status, took = await asyncio.to_thread(readyz, base, 10.0)
                self.readyz_during_pause[str(status)] += 1
                self.slowest_readyz_during_pause = max(self.slowest_readyz_during_pause, took)
                await asyncio.sleep(1.0)
        finally:
            os.kill(db_pid, signal.SIGCONT)
        self.note("db SIGCONT")
        recovered = await wait_ready(base)
        self.note("recovery", ready_after_s=round(recovered, 1))
        await asyncio.sleep(15)


async def scenario(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    receiver = Receiver()
    await receiver.start()
    creds = server.credentials()
    async with aiohttp.ClientSession() as session:
        admin = await login(session, server.base, creds["admin"])
        await _post(session, server.base, f"{API}/webhooks", admin, {
            "url": f"http://127.0.0.1:{receiver.port}/hook",
            "event_types": ["audit.submitted", "audit.released", "photo.uploaded", "rectification.submitted"]})
    branches, phones, heads, reviewers = await prepare(server, phones=args.phones, reviewers=1)
    heads = heads[: max(3, len(heads) // 2)]
    photos = PhotoMaker(sizes_mb=(1.2, 2.5))
    ledger = Ledger()
    behaviour = Behaviour(timeout_s=args.client_timeout, give_up_s=120.0)

    stats = Stats()
    world = World(server.base, branches, photos, ledger, stats, behaviour, time.monotonic() + 3600)
    faults = Faults(server, stats, args.baseline, args.pause)
    load = asyncio.create_task(run_personas(world, phones, heads, reviewers, seed=11))
    try:
        await faults.run()
    finally:
        world.stop_event.set()
        await load
    stats.stop()

    print("  fresh load after the faults ...", flush=True)
    after = Stats()
    after.phase = "after faults"
    world2 = World(server.base, branches, photos, ledger, after, behaviour, time.monotonic() + args.after)
    submitted_before = len(ledger.submitted_audits)
    await run_personas(world2, phones, heads, reviewers, seed=12)
    after.stop()
    submitted_after = len(ledger.submitted_audits) - submitted_before
    await asyncio.sleep(5)  # deliveries and rectifications of the last events
    await receiver.stop()
    check = await asyncio.to_thread(consistency, int(server.run_state()["db_port"]), ledger)
    return {"stats": stats, "after": after, "faults": faults, "ledger": ledger, "check": check,
            "submitted_after": submitted_after, "webhooks_received": receiver.seen, "behaviour": behaviour}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=8)
    parser.add_argument("--baseline", type=float, default=12.0)
    parser.add_argument("--pause", type=float, default=30.0, help="seconds the database is stopped")
    parser.add_argument("--after", type=float, default=15.0, help="seconds of fresh load after the faults")
    parser.add_argument("--client-timeout", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="branch-audit-faults-"))
    server = Server(tmp / "var", workers=2)
    print(f"starting branch-audit serve --workers 2 (VAR_DIR={server.var_dir}) ...", flush=True)
    server.start()
    try:
        out = asyncio.run(scenario(server, args))
    finally:
        code = server.stop()
    stats: Stats = out["stats"]
    after: Stats = out["after"]
    faults: Faults = out["faults"]
    check: dict[str, Any] = out["check"]
    received: Counter[str] = out["webhooks_received"]

    print("\nresponses by phase (status or client-side outcome):")
    phases = {**stats.by_phase, **after.by_phase}
    slowest = {**stats.slowest_by_phase, **after.slowest_by_phase}
    for phase, counts in phases.items():
        print(f"  {phase:<24} slowest {slowest.get(phase, 0):6.2f} s  {dict(sorted(counts.items()))}")
    print(f"\nreadyz while the database was stopped: {dict(faults.readyz_during_pause)}, "
          f"slowest {faults.slowest_readyz_during_pause:.2f} s")
    print("\nduring the faults:\n" + stats.table())
    print("\nafter the faults:\n" + after.table())
    print()
    print(consistency_table(check))
    repeats = sum(n - 1 for n in received.values() if n > 1)
    print(f"webhook deliveries received: {sum(received.values())} for {len(received)} deliveries "
          f"({repeats} at-least-once repeats)")
    totals = stats.totals() + after.totals()
    server_errors = {k: n for k, n in totals.items() if k.isdigit() and int(k) >= 500 and k != "503"}
    bad_503 = stats.outcomes.get("503 shape", Counter()) + after.outcomes.get("503 shape", Counter())
    hangs = totals.get("client_timeout", 0)
    # 409 is a state answer (a replayed release, a colleague's submit), not a failure to serve.
    after_errors = {k: n for k, n in after.totals().items()
                    if not k.startswith(("2", "3")) and k not in ("dropped", "409")}
    verdicts = {
        "no acknowledged write lost": not any(check["lost"].values()),
        "no duplicates": not any(check["duplicates"].values()),
        "no 5xx other than 503": not server_errors,
        "every 503 is problem+json with Retry-After": not bad_503,
        "503s seen during the outage": totals.get("503", 0) > 0,
        "no request outlasted the client timeout": hangs == 0,
        "recovered by itself (load succeeds again)": out["submitted_after"] > 0 and not after_errors,
        "server stopped cleanly": code == 0,
    }
    print("\nverdicts:")
    for name, ok in verdicts.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if stats.problems or after.problems:
        print("\nproblems seen (first 20):")
        for line in (stats.problems + after.problems)[:20]:
            print("  " + line)
    save("faults", {
        "phones": args.phones, "pause_s": args.pause, "behaviour": asdict(out["behaviour"]),
        "timeline": faults.timeline, "responses_by_phase": {k: dict(v) for k, v in phases.items()},
        "slowest_response_by_phase_s": {k: round(v, 2) for k, v in slowest.items()},
        "readyz_during_pause": dict(faults.readyz_during_pause),
        "operations_during_faults": stats.rows(), "operations_after": after.rows(),
        "audits_submitted_after_faults": out["submitted_after"], "consistency": check,
        "webhook_deliveries_received": sum(received.values()), "webhook_repeats_received": repeats,
        "server_errors": server_errors, "bad_503": dict(bad_503), "client_timeouts": hangs,
        "verdicts": verdicts, "problems": (stats.problems + after.problems)[:80], "server_exit_code": code,
    })
    print("\nwritten bench/results/faults.json")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
