"""Reminder times, escalation levels, quiet hours and the collapse of missed steps (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from server.domain.reminders import ReminderPolicy, roles_for_level, step_kind

SHANGHAI = "Asia/Shanghai"
MADRID = "Europe/Madrid"
POLICY = ReminderPolicy()
# Thursday 5 Nov 2026 18:00 in Shanghai.
DUE = datetime(2026, 11, 5, 10, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_default_schedule_48h_24h_at_due_then_daily() -> None:
    times = [POLICY.delivery_time(DUE, step, SHANGHAI) for step in range(6)]
    assert times == [DUE - timedelta(hours=48), DUE - timedelta(hours=24), DUE, DUE + timedelta(days=1),
                     DUE + timedelta(days=2), DUE + timedelta(days=3)]
    assert [step_kind(POLICY, s) for s in range(4)] == ["before", "before", "due", "overdue"]


def test_escalation_levels_branch_head_then_regional_manager_then_compliance() -> None:
    levels = [POLICY.escalation_level(DUE, step) for step in range(7)]
    assert levels == [0, 0, 0, 1, 1, 2, 2]
    assert roles_for_level(0) == ("branch_head",)
    assert roles_for_level(1) == ("branch_head", "regional_manager")
    assert roles_for_level(2) == ("branch_head", "regional_manager", "compliance")


def test_quiet_hours_wait_until_08_00_local() -> None:
    # 02:00 Shanghai (18:00 UTC the day before) waits until 08:00 Shanghai the same morning.
    assert POLICY.deliverable_at(utc(2026, 11, 4, 18), SHANGHAI) == utc(2026, 11, 5, 0)
    # 21:30 Shanghai waits until 08:00 the next morning.
    assert POLICY.deliverable_at(utc(2026, 11, 4, 13, 30), SHANGHAI) == utc(2026, 11, 5, 0)
    # 08:00 and 19:59 are fine as they are.
    assert POLICY.deliverable_at(utc(2026, 11, 5, 0), SHANGHAI) == utc(2026, 11, 5, 0)
    assert POLICY.deliverable_at(utc(2026, 11, 5, 11, 59), SHANGHAI) == utc(2026, 11, 5, 11, 59)


def test_quiet_hours_across_madrid_dst_changes() -> None:
    # Sat 28 Mar 2026 22:00 CET; the night loses an hour, so 08:00 on Sunday is CEST = 06:00 UTC.
    assert POLICY.deliverable_at(utc(2026, 3, 28, 21), MADRID) == utc(2026, 3, 29, 6)
    # Sat 24 Oct 2026 22:00 CEST; the night gains an hour, so 08:00 on Sunday is CET = 07:00 UTC.
    assert POLICY.deliverable_at(utc(2026, 10, 24, 20), MADRID) == utc(2026, 10, 25, 7)
    # 02:30 on the spring-forward night does not exist locally; still 08:00 CEST.
    assert POLICY.deliverable_at(utc(2026, 3, 29, 1, 30), MADRID) == utc(2026, 3, 29, 6)


def test_reminders_for_a_late_deadline_move_out_of_the_night() -> None:
    late_due = datetime(2026, 11, 5, 15, 59, 59, tzinfo=UTC)  # 23:59:59 Shanghai
    assert POLICY.delivery_time(late_due, 1, SHANGHAI) == utc(2026, 11, 5, 0)  # 08:00 on the due day
    assert POLICY.delivery_time(late_due, 2, SHANGHAI) == utc(2026, 11, 6, 0)  # at due -> next morning


def test_first_step_skips_what_is_already_past_when_created() -> None:
    # Created 33 h before the deadline: the 48 h reminder is past, the 24 h one is next.
    assert POLICY.first_step(DUE, DUE - timedelta(hours=33), SHANGHAI) == 1
    assert POLICY.first_step(DUE, DUE - timedelta(days=7), SHANGHAI) == 0


def test_plan_sends_nothing_before_the_step_is_due() -> None:
    assert POLICY.plan(DUE, 0, DUE - timedelta(hours=49), SHANGHAI) is None
    plan = POLICY.plan(DUE, 0, DUE - timedelta(hours=48), SHANGHAI)
    assert plan is not None
    assert (plan.step, plan.skipped, plan.level, plan.overdue) == (0, 0, 0, False)
    assert plan.next_step == 1
    assert plan.next_at == DUE - timedelta(hours=24)


def test_downtime_collapses_missed_steps_into_the_latest_one() -> None:
    # Down from before the 48 h reminder until 3 days and an hour after the deadline.
    plan = POLICY.plan(DUE, 0, DUE + timedelta(days=3, hours=1), SHANGHAI)
    assert plan is not None
    assert plan.step == 5  # the "3 days overdue" step only
    assert plan.skipped == 5
    assert plan.level == 2
    assert plan.overdue is True
    assert plan.next_at == DUE + timedelta(days=4)


def test_at_due_step_marks_overdue_without_escalating() -> None:
    plan = POLICY.plan(DUE, 2, DUE, SHANGHAI)
    assert plan is not None and plan.overdue and plan.level == 0


def test_policy_from_configuration_text() -> None:
    policy = ReminderPolicy.from_text(before_hours="24, 72", overdue_every_hours=12, quiet_hours="22:00-07:30",
                                      regional_after_hours=12, compliance_after_hours=36, digest_at="09:00")
    assert policy.nominal_time(DUE, 0) == DUE - timedelta(hours=72)
    assert policy.nominal_time(DUE, 1) == DUE - timedelta(hours=24)
    assert policy.nominal_time(DUE, 3) == DUE + timedelta(hours=12)
    assert policy.escalation_level(DUE, 3) == 1
    assert policy.escalation_level(DUE, 5) == 2
    assert policy.in_quiet_hours(time(22, 0)) and policy.in_quiet_hours(time(7, 29))
    assert not policy.in_quiet_hours(time(7, 30))


def test_digest_date_between_digest_time_and_quiet_hours() -> None:
    assert POLICY.digest_date(utc(2026, 11, 5, 0, 29), SHANGHAI) is None  # 08:29
    assert POLICY.digest_date(utc(2026, 11, 5, 0, 30), SHANGHAI) == date(2026, 11, 5)
    assert POLICY.digest_date(utc(2026, 11, 5, 12, 0), SHANGHAI) is None  # 20:00, quiet
