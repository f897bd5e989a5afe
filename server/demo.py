"""The demo organisation seeded on the first start against an empty database."""

from __future__ import annotations

import json
import logging
import secrets
from datetime import timedelta
from pathlib import Path

from schemas.admin import RegionUpdate
from schemas.audits import ProgramCreate
from schemas.org import BranchCreate, RegionCreate, UserCreate
from server.context import Services
from server.db import Doc
from server.domain.access import Principal
from server.http.authz import principal_from_user
from server.services import organisation as org_commands
from server.services import users as user_commands
from server.storage.meta import claim_marker

log = logging.getLogger("branch_audit.demo")

REGIONS = [
    {"code": "EAST", "name": "East China"},
    {"code": "IBERIA", "name": "Iberia"},
]

# Real places; coordinates are the branches' street addresses.
BRANCHES = [
    ("SH-LJZ", "Shanghai Lujiazui", "EAST", "1000 Lujiazui Ring Rd, Pudong, Shanghai", 31.2397, 121.4998,
     "Asia/Shanghai", "full_service"),
    ("SH-JA", "Shanghai Jing'an", "EAST", "1618 Nanjing West Rd, Jing'an, Shanghai", 31.2235, 121.4455,
     "Asia/Shanghai", "full_service"),
    ("HZ-XH", "Hangzhou West Lake", "EAST", "2 Hubin Rd, Shangcheng, Hangzhou", 30.2590, 120.1635,
     "Asia/Shanghai", "community"),
    ("NJ-XJK", "Nanjing Xinjiekou", "EAST", "1 Zhongshan South Rd, Qinhuai, Nanjing", 32.0417, 118.7845,
     "Asia/Shanghai", "full_service"),
    ("MAD-GV", "Madrid Gran Via", "IBERIA", "Gran Via 32, 28013 Madrid", 40.4203, -3.7058,
     "Europe/Madrid", "full_service"),
    ("BCN-PG", "Barcelona Passeig de Gracia", "IBERIA", "Passeig de Gracia 21, 08007 Barcelona", 41.3915, 2.1649,
     "Europe/Madrid", "full_service"),
    ("VLC-CO", "Valencia Colon", "IBERIA", "Carrer de Colon 1, 46004 Valencia", 39.4699, -0.3720,
     "Europe/Madrid", "community"),
]

# (role, username, display name, region code, branch code for scope, home branch code, language)
USERS = [
    ("admin", "admin", "Ada Admin", None, None, None, "en"),
    ("compliance", "compliance", "Chen Hegui", None, None, None, "zh-CN"),
    ("regional_manager", "east.manager", "Wang Quyu", "EAST", None, None, "zh-CN"),
    ("branch_head", "ljz.head", "Li Wangdian", "EAST", "SH-LJZ", "SH-LJZ", "zh-CN"),
    ("inspector", "inspector", "Zhou Jiancha", "EAST", None, "HZ-XH", "zh-CN"),
    ("mystery_shopper", "shopper", "Sofia Secreta", None, None, "VLC-CO", "es"),
]
EXTRA_USERS = [
    ("regional_manager", "iberia.manager", "Marta Region", "IBERIA", None, None, "es"),
    ("branch_head", "ja.head", "Zhang Jingan", "EAST", "SH-JA", "SH-JA", "zh-CN"),
    ("branch_head", "hz.head", "Liu Xihu", "EAST", "HZ-XH", "HZ-XH", "zh-CN"),
    ("branch_head", "nj.head", "Sun Xinjiekou", "EAST", "NJ-XJK", "NJ-XJK", "zh-CN"),
    ("branch_head", "mad.head", "Javier Granvia", "IBERIA", "MAD-GV", "MAD-GV", "es"),
    ("branch_head", "bcn.head", "Laia Gracia", "IBERIA", "BCN-PG", "BCN-PG", "es"),
    ("branch_head", "vlc.head", "Pau Colon", "IBERIA", "VLC-CO", "VLC-CO", "es"),
    ("inspector", "inspector2", "Elena Revisora", "IBERIA", None, "MAD-GV", "es"),
    ("mystery_shopper", "shopper2", "Lin Anfang", None, None, "NJ-XJK", "zh-CN"),
    ("mystery_shopper", "shopper3", "Diego Incognito", None, None, "BCN-PG", "es"),
]


async def seed_demo_if_empty(services: Services) -> bool:
    """Seed once per database (across processes); returns whether this call seeded."""
    if await services.db.users.estimated_document_count() > 0:
        return False
    if not await claim_marker(services.db, "demo_seeded", services.clock.now()):
        return False
    credentials = await seed_demo(services)
    path = services.settings.var_dir / "demo-credentials.json"
    write_credentials(path, credentials)
    activity = await seed_demo_activity(services) if services.settings.publish_checklists else {}
    log.info("demo organisation seeded", extra={"credentials_file": str(path), **activity})
    return True


# The demo's programs: this month's visits for the inspectors (open) and the shoppers (covert).
DEMO_PROGRAMS = [
    ("Branch service inspections", "branch-service", False),
    ("Mystery visits", "mystery-visit", True),
]
DEMO_HISTORY_AUDITS = 150


async def seed_demo_activity(services: Services) -> dict[str, int]:
    """Work for the demo people, so `make run` shows something to do: the next four weeks' visits for the
    inspectors and shoppers, and six months of released history (findings, rectifications, scorecards)
    for compliance, the regional managers and the branch heads. The demo's admin plans the programs with
    the same commands as the API."""
    from server.commands.generate import generate_history
    from server.services import programs as program_commands

    now = services.clock.now()
    admin = await _demo_admin(services)
    branch_ids = sorted(b["_id"] for b in await services.db.branches.find({}, {"_id": 1}).to_list())
    planned = 0
    for name, checklist_key, covert in DEMO_PROGRAMS:
        program = await program_commands.create_program(services, admin, ProgramCreate(
            name=name, checklist_key=checklist_key, branch_ids=branch_ids, starts_on=now.date(),
            ends_on=(now + timedelta(days=27)).date(), visits_per_branch=1, channel="in_branch", covert=covert,
        ))
        visits, _ = await program_commands.generate_assignments(services, admin, program["_id"])
        planned += len(visits)
    history = await generate_history(services, count=DEMO_HISTORY_AUDITS, months=6, seed=7)
    return {"assignments": planned, "history_audits": int(history["audits"])}


async def _demo_admin(services: Services) -> Principal:
    user = await services.db.users.find_one({"username": USERS[0][1]})
    if user is None:
        raise RuntimeError("the demo organisation is not seeded")
    return principal_from_user(user)


def write_credentials(path: Path, credentials: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(credentials, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


async def seed_demo(services: Services) -> dict[str, dict[str, str]]:
    """The demo organisation, made with the same commands as the admin API: the first admin as the operator
    on the command line would, then the regions, branches, people and region managers by that admin (each
    with its event and trail entry, like any other change to the organisation)."""
    credentials: dict[str, dict[str, str]] = {}

    async def person(caller: Principal | None, role: str, username: str, display: str, region_id: str | None,
                     branch_id: str | None, home_branch_id: str | None, language: str) -> Doc:
        password = secrets.token_urlsafe(12)
        credentials.setdefault(role, {"username": username, "password": password})
        return await user_commands.create_user(services, caller, UserCreate.model_validate({
            "username": username, "password": password, "role": role, "display_name": display,
            "region_id": region_id, "branch_id": branch_id, "home_branch_id": home_branch_id,
            "language": language, "email": f"{username}@demo.branch-audit.example",
        }))

    first, *others = USERS + EXTRA_USERS
    role, username, display, _, _, _, lang = first
    admin = principal_from_user(await person(None, role, username, display, None, None, None, lang))
    region_ids: dict[str, str] = {}
    for fields in REGIONS:
        created = await org_commands.create_region(services, admin, RegionCreate.model_validate(fields))
        region_ids[fields["code"]] = created["_id"]
    branch_ids: dict[str, str] = {}
    for code, name, region_code, address, lat, lon, tz, kind in BRANCHES:
        branch = await org_commands.create_branch(services, admin, BranchCreate.model_validate({
            "code": code, "name": name, "region_id": region_ids[region_code], "address": address,
            "location": {"lat": lat, "lon": lon}, "timezone": tz, "branch_type": kind,
            "opening_hours": {"open": "09:00", "close": "17:00", "weekdays": [0, 1, 2, 3, 4, 5]},
        }))
        branch_ids[code] = branch["_id"]
    for role, username, display, region, branch_code, home, lang in others:
        user = await person(admin, role, username, display, region_ids.get(region or ""),
                            branch_ids.get(branch_code or ""), branch_ids.get(home or ""), lang)
        if role == "regional_manager" and region:
            await org_commands.update_region(services, admin, region_ids[region],
                                             RegionUpdate(manager_user_id=user["_id"]))
    return credentials
