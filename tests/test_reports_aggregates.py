"""Report aggregates: the pure arithmetic, and the event-kept buckets against a full recomputation."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from server.commands.generate import generate_history
from server.context import Services
from server.reports import aggregates as agg
from server.storage import reports
from tests.report_factories import Org, ReportFactory


def test_iso_week_and_month_labels_follow_utc_calendar() -> None:
    # 2026-01-01 is a Thursday: ISO week 1 of 2026 starts on Monday 2025-12-29
    moment = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    assert agg.week_of(moment) == ("2026-W01", datetime(2025, 12, 29, tzinfo=UTC))
    assert agg.month_of(moment) == ("2026-01", datetime(2026, 1, 1, tzinfo=UTC))
    assert agg.week_of(datetime(2027, 1, 1, tzinfo=UTC))[0] == "2026-W53"


def test_contribution_counts_only_released_audits_and_delta_reverses_it() -> None:
    audit = {
        "status": "released",
        "released_at": datetime(2026, 3, 4, tzinfo=UTC),
        "branch_id": "b1",
        "region_id": "r1",
        "program_id": None,
        "checklist_key": "k",
        "score": 87.35,
        "grade": "B",
        "critical_failed": False,
        "result": {"sections": [{"id": "s1", "score": 80.0, "points": 8.0, "max": 10.0}]},
    }
    contribution, metas = agg.audit_contribution(audit)
    # branch+region x month+week, plus one section at three scopes
    assert len(contribution) == 7
    branch_month = next(b for b, m in metas.items() if m.dim == "branch" and m.interval == "month")
    assert contribution[branch_month] == {"count": 1, "score_sum": 8735, "critical_failed": 0, "grades.B": 1}
    assert agg.audit_contribution({**audit, "status": "submitted"}) == ({}, {})
    assert agg.delta(contribution, {}) == {k: {f: -v for f, v in fs.items() if v} for k, fs in contribution.items()}
    rescored, _ = agg.audit_contribution({**audit, "score": 91.0, "grade": "A"})
    assert agg.delta(contribution, rescored)[branch_month] == {"score_sum": 365, "grades.B": -1, "grades.A": 1}


def test_repeat_streaks_find_consecutive_failures_only() -> None:
    failed = {"a1": {"x", "y"}, "a2": {"x"}, "a3": {"x", "z"}, "a4": {"z"}, "a5": {"y"}}
    streaks = agg.repeat_streaks(["a1", "a2", "a3", "a4", "a5"], failed)
    assert [(s.item_id, s.audit_ids, s.current) for s in streaks] == [
        ("x", ("a1", "a2", "a3"), False),
        ("z", ("a3", "a4"), False),
    ]
    assert agg.repeat_streaks(["a1", "a2"], {"a1": {"q"}, "a2": {"q"}})[0].current is True


def test_percentile_interpolates_like_numpy() -> None:
    assert agg.percentile([], 0.9) is None
    assert agg.percentile([10.0], 0.9) == 10.0
    assert agg.percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9) == 9.1


async def test_buckets_kept_from_events_equal_a_full_recomputation(services: Services, demo: object) -> None:
    """A seeded random run of submissions, releases, rescorings after appeals and redeliveries."""
    org = await Org.load(services)
    factory = ReportFactory(services)
    rng = random.Random(20261102)
    branches = list(org.branches.values())
    base = datetime(2026, 8, 25, tzinfo=UTC)  # spans month and ISO-week boundaries
    submitted: list[dict[str, Any]] = []
    released: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for _ in range(70):
        action = rng.random()
        if action < 0.45 or not submitted:
            started = base + timedelta(days=rng.uniform(0, 70))
            audit = await factory.submitted(
                rng.choice(branches),
                round(rng.uniform(40, 100), 2),
                critical_failed=rng.random() < 0.15,
                started_at=started,
                program_id=rng.choice([None, "prog-a", "prog-b"]),
            )
            submitted.append(audit)
        elif action < 0.8:
            audit = submitted.pop(rng.randrange(len(submitted)))
            released_at = audit["started_at"] + timedelta(days=rng.uniform(0, 9))
            events.append(await factory.release(audit, released_at))
            released.append(audit)
        elif action < 0.95 and released:
            audit = rng.choice(released)
            events.append(
                await factory.rescore(
                    audit,
                    round(min(100.0, float(audit["score"]) + rng.uniform(0.5, 15)), 2),
                    critical_failed=False if rng.random() < 0.5 else None,
                )
            )
        elif events:
            # a redelivered event must change nothing
            await factory.dispatch(str(rng.choice(events)["_id"]))
    assert len(released) >= 10 and any(e["type"] == "audit.rescored" for e in events)

    fresh = await reports.recompute(services.db)
    stored = await reports.stored_totals(services.db)
    assert stored == fresh.totals
    released_count = sum(
        fields["count"]
        for bucket_id, fields in fresh.totals.items()
        if bucket_id.startswith("region|") and "|month|" in bucket_id
    )
    assert released_count == len(released)

    summary = await reports.rebuild(services.db, services.clock.now())
    assert summary["audits"] == len(released)
    assert await reports.stored_totals(services.db) == stored


async def test_generator_writes_history_whose_aggregates_match(services: Services) -> None:
    summary = await generate_history(services, count=300, branches=12, months=6, seed=7, fix_photos=False)
    assert summary["audits"] == 300 and summary["branches"] == 12
    assert summary["findings"] > 0 and summary["rectifications"] > 0
    released = await services.db.audits.count_documents({"status": "released"})
    assert summary["aggregates"]["audits"] == released
    assert 250 <= released < 300
    fresh = await reports.recompute(services.db)
    assert await reports.stored_totals(services.db) == fresh.totals
    sample = await services.db.audits.find_one({"status": "released"})
    assert sample is not None and sample["history_key"].endswith(sample["_id"])
    assert set(sample["finding_counts"]) == {"minor", "major", "critical"}
