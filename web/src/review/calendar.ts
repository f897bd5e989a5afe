// The weeks of a program's period (Monday first) for the visit calendar, and which visits fall on a day.
// Pure, tested with node --test.

export interface CalendarDay {
  day: string;
  inPeriod: boolean;
}

function addDays(day: string, n: number): string {
  const at = new Date(`${day}T00:00:00Z`);
  at.setUTCDate(at.getUTCDate() + n);
  return at.toISOString().slice(0, 10);
}

/** Whole weeks (Monday to Sunday) covering [startsOn, endsOn]; days outside the period marked. */
export function calendarWeeks(startsOn: string, endsOn: string): CalendarDay[][] {
  const weekday = (new Date(`${startsOn}T00:00:00Z`).getUTCDay() + 6) % 7;
  let day = addDays(startsOn, -weekday);
  const weeks: CalendarDay[][] = [];
  while (day <= endsOn && weeks.length < 60) {
    const week: CalendarDay[] = [];
    for (let i = 0; i < 7; i += 1) {
      week.push({ day, inPeriod: day >= startsOn && day <= endsOn });
      day = addDays(day, 1);
    }
    weeks.push(week);
  }
  return weeks;
}
