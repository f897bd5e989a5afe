"""GET /api/v1/reports/*: scorecards, trends, the trend chart, repeat findings, rectification performance."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from server.context import Services
from tests.conftest import Api, assert_problem
from tests.report_factories import Org, ReportFactory, login_as

OCT = datetime(2026, 10, 5, 2, 0, tzinfo=UTC)
SEP = datetime(2026, 9, 8, 2, 0, tzinfo=UTC)


async def seed_scores(services: Services) -> tuple[Org, dict[str, Any]]:
    """SH-LJZ: 80 and 90 in October (program P1) and 60 in September; MAD-GV: 70 with a critical failure."""
    org = await Org.load(services)
    factory = ReportFactory(services)
    ljz, mad = org.branches["SH-LJZ"], org.branches["MAD-GV"]
    audits = {}
    for name, branch, score, critical, when, program in (
        ("ljz1", ljz, 80.0, False, OCT, "P1"),
        ("ljz2", ljz, 90.0, False, OCT + timedelta(days=8), "P1"),
        ("ljz0", ljz, 60.0, False, SEP, None),
        ("mad1", mad, 70.0, True, OCT, "P1"),
    ):
        audit = await factory.submitted(branch, score, critical_failed=critical, started_at=when, program_id=program)
        await factory.release(audit, when + timedelta(days=1))
        audits[name] = audit
    # submitted but never released: must not count
    await factory.submitted(ljz, 10.0, started_at=OCT)
    return org, audits


def row(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(item for item in body["items"] if item["key"] == key)


async def test_scorecard_by_branch_region_and_section(api: Api, services: Services) -> None:
    org, _ = await seed_scores(services)
    ljz, mad = org.branches["SH-LJZ"], org.branches["MAD-GV"]
    body = await api.json("GET", "/api/v1/reports/scorecard?group_by=branch", "compliance", expect=200)
    ljz_row = row(body, ljz["_id"])
    assert (ljz_row["audits"], ljz_row["average_score"], ljz_row["grades"]) == (3, 76.67, {"A": 1, "B": 1, "D": 1})
    assert ljz_row["code"] == "SH-LJZ" and ljz_row["critical_failed"] == 0
    mad_row = row(body, mad["_id"])
    assert (mad_row["audits"], mad_row["critical_failed"], mad_row["grades"]) == (1, 1, {"F": 1})
    assert body["total"]["audits"] == 4 and body["total"]["average_score"] == 75.0

    october = await api.json(
        "GET", "/api/v1/reports/scorecard?group_by=branch&from=2026-10-01&to=2026-10-31", "compliance", expect=200
    )
    assert row(october, ljz["_id"])["audits"] == 2 and row(october, ljz["_id"])["average_score"] == 85.0
    program = await api.json("GET", "/api/v1/reports/scorecard?group_by=branch&program_id=P1", "compliance", expect=200)
    assert {i["key"]: i["audits"] for i in program["items"]} == {ljz["_id"]: 2, mad["_id"]: 1}

    regions = await api.json("GET", "/api/v1/reports/scorecard?group_by=region", "compliance", expect=200)
    assert row(regions, org.regions["EAST"]["_id"])["audits"] == 3
    assert row(regions, org.regions["IBERIA"]["_id"])["critical_failure_rate"] == 1.0

    sections = await api.json("GET", "/api/v1/reports/scorecard?group_by=section", "compliance", expect=200)
    environment = row(sections, "branch-service:environment")
    assert environment["audits"] == 4 and environment["average_score"] == 75.0
    assert environment["average_points_ratio"] == 0.75


async def test_scorecard_scope_per_role(api: Api, services: Services) -> None:
    org, _ = await seed_scores(services)
    ljz, mad = org.branches["SH-LJZ"], org.branches["MAD-GV"]
    head = await api.json("GET", "/api/v1/reports/scorecard?group_by=branch", "branch_head", expect=200)
    assert [i["key"] for i in head["items"]] == [ljz["_id"]]
    sections = await api.json("GET", "/api/v1/reports/scorecard?group_by=section", "branch_head", expect=200)
    assert row(sections, "branch-service:service")["audits"] == 3
    resp = await api.call("GET", "/api/v1/reports/scorecard?group_by=region", "branch_head")
    assert_problem(resp, await resp.json(), 403)
    resp = await api.call("GET", f"/api/v1/reports/scorecard?branch_id={mad['_id']}", "branch_head")
    assert_problem(resp, await resp.json(), 404)
    manager = await api.json("GET", "/api/v1/reports/scorecard?group_by=branch", "regional_manager", expect=200)
    assert [i["key"] for i in manager["items"]] == [ljz["_id"]]
    resp = await api.call(
        "GET", f"/api/v1/reports/scorecard?region_id={org.regions['IBERIA']['_id']}", "regional_manager"
    )
    assert_problem(resp, await resp.json(), 404)
    for role in ("inspector", "mystery_shopper"):
        for path in (
            "/api/v1/reports/scorecard",
            "/api/v1/reports/trend",
            "/api/v1/reports/trend.png",
            "/api/v1/reports/repeat-findings",
            "/api/v1/reports/rectifications",
        ):
            resp = await api.call("GET", path, role)
            assert_problem(resp, await resp.json(), 403)
    resp = await api.call("GET", "/api/v1/reports/scorecard")
    assert resp.status == 401


async def test_trend_by_month_and_week_and_its_chart(api: Api, services: Services) -> None:
    org, _ = await seed_scores(services)
    ljz = org.branches["SH-LJZ"]
    body = await api.json(
        "GET", f"/api/v1/reports/trend?branch_id={ljz['_id']}&interval=month", "compliance", expect=200
    )
    assert [(p["period"], p["audits"], p["average_score"]) for p in body["points"]] == [
        ("2026-09", 1, 60.0),
        ("2026-10", 2, 85.0),
    ]
    weeks = await api.json(
        "GET", f"/api/v1/reports/trend?branch_id={ljz['_id']}&interval=week", "compliance", expect=200
    )
    assert [p["period"] for p in weeks["points"]] == ["2026-W37", "2026-W41", "2026-W42"]
    region = await api.json("GET", "/api/v1/reports/trend", "regional_manager", expect=200)
    assert region["region_id"] == org.regions["EAST"]["_id"] and sum(p["audits"] for p in region["points"]) == 3
    own = await api.json("GET", "/api/v1/reports/trend", "branch_head", expect=200)
    assert own["branch_id"] == ljz["_id"]
    resp = await api.call("GET", f"/api/v1/reports/trend?branch_id={org.branches['MAD-GV']['_id']}", "branch_head")
    assert_problem(resp, await resp.json(), 404)
    resp = await api.call("GET", f"/api/v1/reports/trend?region_id={org.regions['EAST']['_id']}", "branch_head")
    assert_problem(resp, await resp.json(), 404)

    resp = await api.call("GET", f"/api/v1/reports/trend.png?branch_id={ljz['_id']}&lang=zh-CN", "compliance")
    assert resp.status == 200 and resp.content_type == "image/png"
    png = await resp.read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (800, 400)
    resp = await api.call("GET", f"/api/v1/reports/trend.png?branch_id={org.branches['MAD-GV']['_id']}", "branch_head")
    assert resp.status == 404


async def test_repeat_findings_listed_and_counted(api: Api, services: Services) -> None:
    org = await Org.load(services)
    factory = ReportFactory(services)
    ljz, ja, mad = org.branches["SH-LJZ"], org.branches["SH-JA"], org.branches["MAD-GV"]
    x, y, z = (
        ("environment", "env_hall_clean", "major"),
        ("environment", "env_signage_branding", "minor"),
        (
            "service",
            "svc_greeting",
            "minor",
        ),
    )
    sequence = [[x, y], [x], [x, z], [z]]
    ljz_audits = []
    for index, failed in enumerate(sequence):
        when = OCT - timedelta(days=40 - index * 7)
        audit = await factory.submitted(ljz, 75.0, started_at=when, failed_items=failed)
        await factory.release(audit, when + timedelta(hours=5))
        ljz_audits.append(audit)
    # SH-JA: the same item twice, but the second finding was overturned on appeal
    for index in range(2):
        when = OCT - timedelta(days=20 - index * 7)
        audit = await factory.submitted(ja, 80.0, started_at=when, failed_items=[x])
        await factory.release(audit, when + timedelta(hours=5))
    await factory.overturn(audit, x[1])
    # MAD-GV: a repeat in an unreleased audit does not count
    first = await factory.submitted(mad, 70.0, started_at=OCT - timedelta(days=9), failed_items=[y])
    await factory.release(first, OCT - timedelta(days=8))
    await factory.submitted(mad, 70.0, started_at=OCT - timedelta(days=2), failed_items=[y])

    body = await api.json("GET", "/api/v1/reports/repeat-findings", "compliance", expect=200)
    found = [(i["branch_id"], i["item_id"], i["streak"], i["current"]) for i in body["items"]]
    assert found == [(ljz["_id"], "env_hall_clean", 3, False), (ljz["_id"], "svc_greeting", 2, True)]
    assert body["items"][0]["audit_ids"] == [a["_id"] for a in ljz_audits[:3]]
    assert body["by_branch"] == [
        {"id": ljz["_id"], "name": ljz["name"], "repeat_items": 2, "longest_streak": 3, "branches": None}
    ]
    assert body["by_region"][0]["id"] == org.regions["EAST"]["_id"] and body["by_region"][0]["branches"] == 1
    current = await api.json("GET", "/api/v1/reports/repeat-findings?current_only=true", "compliance", expect=200)
    assert [i["item_id"] for i in current["items"]] == ["svc_greeting"]
    longer = await api.json("GET", "/api/v1/reports/repeat-findings?min_streak=3", "compliance", expect=200)
    assert [i["item_id"] for i in longer["items"]] == ["env_hall_clean"]

    await login_as(api, services, "iberia.manager")
    iberia = await api.json("GET", "/api/v1/reports/repeat-findings", "iberia.manager", expect=200)
    assert iberia["items"] == []
    head = await api.json("GET", "/api/v1/reports/repeat-findings", "branch_head", expect=200)
    assert {i["branch_id"] for i in head["items"]} == {ljz["_id"]}
    resp = await api.call("GET", f"/api/v1/reports/repeat-findings?branch_id={ja['_id']}", "branch_head")
    assert_problem(resp, await resp.json(), 404)


async def test_rectification_performance(api: Api, services: Services) -> None:
    org = await Org.load(services)
    factory = ReportFactory(services)
    now = services.clock.now()
    ljz, mad = org.branches["SH-LJZ"], org.branches["MAD-GV"]
    day = timedelta(days=1)
    created = now - 10 * day
    # SH-LJZ: verified on time after 24 h and 48 h, verified late after 240 h, one overdue and escalated, one open
    for hours, due in ((24, 3), (48, 3), (240, 3)):
        await factory.rectification(
            ljz,
            status="verified",
            created_at=created,
            due_at=created + due * day,
            closed_at=created + timedelta(hours=hours),
        )
    await factory.rectification(ljz, status="open", created_at=created, due_at=now - day, escalation_level=2)
    await factory.rectification(ljz, status="submitted", created_at=created, due_at=now + day)
    await factory.rectification(mad, status="cancelled", created_at=created, due_at=now - day)

    body = await api.json("GET", "/api/v1/reports/rectifications?group_by=branch", "compliance", expect=200)
    ljz_row = row(body, ljz["_id"])
    assert ljz_row["verified"] == 3 and ljz_row["verified_on_time"] == 2 and ljz_row["overdue_now"] == 1
    assert ljz_row["on_time_closure_rate"] == 0.5  # 2 on time of 3 verified + 1 overdue
    assert ljz_row["mean_hours_to_verify"] == 104.0
    assert ljz_row["p90_hours_to_verify"] == 201.6
    assert (ljz_row["escalated"], ljz_row["max_escalation_level"], ljz_row["open"]) == (1, 2, 2)
    assert row(body, mad["_id"])["cancelled"] == 1 and row(body, mad["_id"])["on_time_closure_rate"] is None

    regions = await api.json("GET", "/api/v1/reports/rectifications?group_by=region", "compliance", expect=200)
    assert row(regions, org.regions["EAST"]["_id"])["total"] == 5
    head = await api.json("GET", "/api/v1/reports/rectifications", "branch_head", expect=200)
    assert [i["key"] for i in head["items"]] == [ljz["_id"]]
    resp = await api.call("GET", "/api/v1/reports/rectifications?group_by=region", "branch_head")
    assert_problem(resp, await resp.json(), 403)
    await login_as(api, services, "iberia.manager")
    iberia = await api.json("GET", "/api/v1/reports/rectifications", "iberia.manager", expect=200)
    assert [i["key"] for i in iberia["items"]] == [mad["_id"]]
