"""`make load`: end-of-month load on `branch-audit serve` (embedded database, fresh VAR_DIR, demo data).

Phones (inspectors and mystery shoppers) log in, fetch their assignments and the checklist (ETag), start
audits with client UUIDs, answer in batches, upload 1-5 MB photos and submit, replaying requests and
dropping connections at random; branch heads fix rectifications; compliance releases audits, verifies fixes
and reads history, scorecards, exports and the trail. Prints throughput and p50/p95/p99 per operation,
then checks against the database that every acknowledged write is stored exactly once.
Writes bench/results/load.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import ROOT, save, wait_ready
from bench.phones import (
    API,
    Account,
    Behaviour,
    Ledger,
    PhotoMaker,
    Stats,
    World,
    consistency,
    consistency_table,
    run_personas,
)
from server.embedded import free_port


class Server:
    """`branch-audit serve` in its own process group, on a fresh VAR_DIR."""

    def __init__(self, var_dir: Path, *, workers: int = 1, extra_env: dict[str, str] | None = None) -> None:
        self.var_dir = var_dir
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "VAR_DIR": str(var_dir), "PORT": str(self.port), "LOG_LEVEL": "WARNING",
               "WEBHOOK_ALLOW_PRIVATE": "true", **(extra_env or {})}
        env.pop("MONGODB_URI", None)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.var_dir / "server.log", "ab")  # noqa: SIM115 - the child keeps its own descriptor
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--workers", str(self.workers)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        wait_ready(self.base + "/readyz", timeout_s=120)
        deadline = time.monotonic() + 60
        while not (self.var_dir / "demo-credentials.json").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("demo credentials were not written")
            time.sleep(0.1)

    def run_state(self) -> dict[str, Any]:
        return dict(json.loads((self.var_dir / "run.json").read_text()))

    def credentials(self) -> dict[str, dict[str, str]]:
        return dict(json.loads((self.var_dir / "demo-credentials.json").read_text()))

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


async def _post(session: aiohttp.ClientSession, base: str, path: str, token: str | None,
                body: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.post(base + path, json=body, headers=headers) as resp:
        data = await resp.json(content_type=None)
        if resp.status not in (200, 201):
            raise RuntimeError(f"POST {path} -> {resp.status}: {data}")
        return data


async def _get(session: aiohttp.ClientSession, base: str, path: str, token: str) -> Any:
    async with session.get(base + path, headers={"Authorization": f"Bearer {token}"}) as resp:
        data = await resp.json(content_type=None)
        if resp.status != 200:
            raise RuntimeError(f"GET {path} -> {resp.status}: {data}")
        return data


async def login(session: aiohttp.ClientSession, base: str, creds: dict[str, str]) -> str:
    body = await _post(session, base, f"{API}/auth/login", None,
                       {"username": creds["username"], "password": creds["password"]})
    return str(body["access_token"])


async def prepare(server: Server, *, phones: int, heads_per_branch: int = 1,
                  reviewers: int = 1) -> tuple[list[dict[str, Any]], list[Account], list[Account], list[Account]]:
    """Users for the personas (created through the API as admin) and a program with assignments."""
    creds = server.credentials()
    base = server.base
    tag = uuid.uuid4().hex[:6]
    async with aiohttp.ClientSession() as session:
        admin = await login(session, base, creds["admin"])
        compliance = await login(session, base, creds["compliance"])
        branches = list((await _get(session, base, f"{API}/branches?limit=200", admin))["items"])

        async def user(role: str, name: str, **scope: str | None) -> Account:
            password = "Load-" + uuid.uuid4().hex
            body: dict[str, Any] = {"username": name, "password": password, "role": role,
                                    "display_name": name, **{k: v for k, v in scope.items() if v}}
            await _post(session, base, f"{API}/users", admin, body)
            return Account(name, password, role, branch_id=scope.get("branch_id"))

        phone_accounts = []
        for i in range(phones):
            role = "mystery_shopper" if i % 3 == 2 else "inspector"
            phone_accounts.append(await user(role, f"load.{tag}.{role[:4]}{i}"))
        head_accounts = []
        for branch in branches:
            for j in range(heads_per_branch):
                head_accounts.append(await user("branch_head", f"load.{tag}.head.{branch['code'].lower()}{j}",
                                                branch_id=branch["id"], region_id=branch["region_id"]))
        reviewer_accounts = [Account(creds["compliance"]["username"], creds["compliance"]["password"],
                                     "compliance")]
        for i in range(reviewers - 1):
            reviewer_accounts.append(await user("compliance", f"load.{tag}.compliance{i}"))
        today = date.today()
        for key, covert in (("branch-service", False), ("mystery-visit", True)):
            program = await _post(session, base, f"{API}/programs", compliance, {
                "name": f"load {tag} {key}", "checklist_key": key, "branch_ids": [b["id"] for b in branches],
                "starts_on": today.isoformat(), "ends_on": (today + timedelta(days=27)).isoformat(),
                "visits_per_branch": 2, "covert": covert})
            await _post(session, base, f"{API}/programs/{program['id']}/assignments", compliance, {})
    return branches, phone_accounts, head_accounts, reviewer_accounts


def proportions(phones: int) -> tuple[int, int]:
    """Branch heads per branch and compliance reviewers for a given number of phones."""
    return (1 if phones <= 40 else 2), max(1, phones // 15)


async def play(server: Server, branches: list[dict[str, Any]], phones: list[Account], heads: list[Account],
               reviewers: list[Account], *, duration: float, ledger: Ledger, photos: PhotoMaker,
               behaviour: Behaviour, seed: int = 1) -> Stats:
    stats = Stats()
    world = World(server.base, branches, photos, ledger, stats, behaviour, time.monotonic() + duration)
    await run_personas(world, phones, heads, reviewers, seed=seed)
    stats.stop()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary VAR_DIR")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="branch-audit-load-"))
    server = Server(tmp / "var", workers=args.workers)
    print(f"starting branch-audit serve --workers {args.workers} (VAR_DIR={server.var_dir}) ...", flush=True)
    server.start()
    try:
        heads_per_branch, reviewers = proportions(args.phones)
        branches, phones, heads, revs = asyncio.run(
            prepare(server, phones=args.phones, heads_per_branch=heads_per_branch, reviewers=reviewers))
        print(f"{len(phones)} phones, {len(heads)} branch heads, {len(revs)} compliance; "
              f"{args.duration:.0f} s of load ...", flush=True)
        photos = PhotoMaker()
        ledger = Ledger()
        behaviour = Behaviour()
        stats = asyncio.run(play(server, branches, phones, heads, revs, duration=args.duration, ledger=ledger,
                                 photos=photos, behaviour=behaviour))
        time.sleep(3)  # let the dispatcher create the rectifications of the last releases
        check = consistency(int(server.run_state()["db_port"]), ledger)
    finally:
        code = server.stop()
    totals = stats.totals()
    served = sum(n for k, n in totals.items() if k.isdigit())
    print()
    print(stats.table())
    print()
    print(f"{served} responses in {stats.elapsed:.1f} s = {served / stats.elapsed:.1f} req/s; "
          f"photo bytes per upload 1-5 MB ({', '.join(f'{len(b) / 1e6:.1f}' for b in photos.bases)} MB)")
    print(f"outcomes: {dict(sorted(totals.items()))}")
    print()
    print(consistency_table(check))
    if stats.problems:
        print("\nproblems seen (first 15):")
        for line in stats.problems[:15]:
            print("  " + line)
    five_hundreds = sum(n for k, n in totals.items() if k.isdigit() and int(k) >= 500 and k != "503")
    ok = check["ok"] and five_hundreds == 0 and len(ledger.submitted_audits) > 0
    save("load", {
        "phones": args.phones, "branch_heads": len(heads), "compliance": len(revs), "workers": args.workers,
        "duration_s": round(stats.elapsed, 1), "responses": served,
        "requests_per_s": round(served / stats.elapsed, 1), "behaviour": asdict(behaviour),
        "photo_sizes_bytes": [len(b) for b in photos.bases], "operations": stats.rows(),
        "outcomes": dict(totals), "consistency": check, "problems": stats.problems[:50],
        "server_exit_code": code, "ok": ok,
    })
    print(f"\nwritten bench/results/load.json; server exit code {code}; {'OK' if ok else 'FAILED'}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
