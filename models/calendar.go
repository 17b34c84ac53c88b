package models

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Calendar is a city's working calendar: when the clock of a deadline runs.
//
// Deadlines (SLA hours) count working time only: a report filed on Friday evening in a city
// that works Monday to Friday is not late on Saturday. The calendar is the city's own, in its
// own time zone, because "08:00" means what the clocks on the city's walls say.
type Calendar struct {
	// Timezone is an IANA name, e.g. "America/New_York". It is set from the jurisdiction,
	// never read from the calendar's JSON, so a city cannot have two time zones.
	Timezone string `json:"-"`
	// Hours are the working periods of each weekday; empty means around the clock, every day.
	Hours []WorkingPeriod `json:"working_hours,omitempty"`
	// Holidays are local dates ("2026-12-25") on which the clock stops all day, whatever Hours say.
	Holidays []string `json:"holidays,omitempty"`
}

// WorkingPeriod is a span of working time on some weekdays, in local wall-clock time.
//
// Periods are wall-clock rather than durations because that is how a city states its hours
// and how its staff work: an office open 08:00–17:00 is open 08:00–17:00 on the day the
// clocks change too, so such a day has 9 working hours like any other. Only a period that
// contains the change itself (a night shift 00:00–06:00) is an hour shorter or longer, since
// working time is real time during which the wall clock shows a working time.
//
// A period is [Start, End): Start is working, End is not. So 08:00–12:00 and 13:00–17:00
// make a day with a lunch break, and 08:00–12:00 and 12:00–17:00 a day without one, with no
// minute counted twice or missing. A period cannot cross midnight: a night shift is two
// periods, "22:00"–"24:00" on one day and "00:00"–"06:00" on the next.
type WorkingPeriod struct {
	Days  []string `json:"days"`  // "mon", "tue", "wed", "thu", "fri", "sat", "sun"
	Start string   `json:"start"` // "08:00", local time, 00:00 to 23:59
	End   string   `json:"end"`   // "17:30", after Start; "24:00" is the end of the day
}

// WorkCalendar is a compiled, read-only calendar, safe for concurrent use.
//
// Its methods walk the working periods day by day (and skip whole weeks at once where no
// holiday or clock change intervenes), never minute by minute, so a deadline months away
// costs microseconds.
type WorkCalendar struct {
	loc *time.Location
	// week holds each weekday's working spans (index time.Weekday, 0 = Sunday), in seconds
	// since local midnight, sorted, with touching periods merged.
	week [7][]calSpan
	// weekly is the working time of a week without holidays or clock changes.
	weekly time.Duration
	// holidays are the local days (days since 1970-01-01 on the wall clock), sorted, unique.
	holidays []int64
	// allDay: no working hours were given, the clock runs around the clock.
	allDay bool
}

// calSpan is [start, end) in seconds since local midnight.
type calSpan struct{ start, end int64 }

const (
	calDaySeconds  = 24 * 60 * 60
	calWeekSeconds = 7 * calDaySeconds
	// calNoStart and calNoEnd stand for "no bound" in zone segments; they are far enough from
	// any instant a time.Time of this era holds to never be reached, and small enough not
	// to overflow when a day's seconds are added.
	calNoStart = -1 << 62
	calNoEnd   = 1 << 62
	// calHorizon, 10000-01-01 00:00 UTC, is as far as Due looks: no time zone rule means
	// anything that far, and it bounds the work of an absurd SLA on a calendar with little
	// working time (1 minute a week for 292 years of working time is millions of years).
	calHorizon = 253402300800
)

var calWeekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// calendarError lists every problem ParseCalendar found, joined by "; ". It is an
// ErrInvalid, and each problem stays reachable with errors.Is and errors.As (the time
// zone's wraps the error of time.LoadLocation).
type calendarError []error

func (e calendarError) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e calendarError) Unwrap() []error { return e }

// Is makes a bad calendar an invalid request, which the API shows as such.
func (e calendarError) Is(target error) bool { return target == ErrInvalid }

// ParseCalendar checks a calendar (known time zone, valid days, HH:MM times with end after
// start, no overlapping periods on a day, valid holiday dates, at least one working minute
// per week when Hours is non-empty) and returns a compiled form ready for fast use.
//
// Every problem is reported, each naming the offending entry (e.g. "working_hours[1]: end
// 07:00 is not after start 08:00"); the error is an ErrInvalid. The text does not say it is
// about a calendar: callers add where the calendar came from.
func ParseCalendar(c Calendar) (*WorkCalendar, error) {
	var errs calendarError
	bad := func(err error) { errs = append(errs, err) }
	w := &WorkCalendar{allDay: len(c.Hours) == 0}

	switch c.Timezone {
	case "":
		bad(fmt.Errorf("timezone is missing: working hours are local to the city"))
	case "Local":
		// time.LoadLocation accepts it, but it is the server's zone, not the city's.
		bad(fmt.Errorf("timezone %q is the server's time zone, not an IANA name such as America/New_York", c.Timezone))
	default:
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			bad(fmt.Errorf("timezone %q is not an IANA time zone such as America/New_York: %w", c.Timezone, err))
		}
		w.loc = loc
	}

	// owned remembers which entry each span of each weekday came from, to name both
	// entries of an overlap.
	type owned struct {
		calSpan
		entry int
	}
	var days [7][]owned
	for i, p := range c.Hours {
		where := fmt.Sprintf("working_hours[%d]", i)
		start, errStart := calParseClock(p.Start, false)
		if errStart != nil {
			bad(fmt.Errorf("%s: start: %w", where, errStart))
		}
		end, errEnd := calParseClock(p.End, true)
		if errEnd != nil {
			bad(fmt.Errorf("%s: end: %w", where, errEnd))
		}
		valid := errStart == nil && errEnd == nil
		if valid && end <= start {
			bad(fmt.Errorf("%s: end %s is not after start %s (a period cannot cross midnight: split it in two)", where, p.End, p.Start))
			valid = false
		}
		if len(p.Days) == 0 {
			bad(fmt.Errorf("%s: days is empty (use \"mon\" to \"sun\")", where))
		}
		seen := map[time.Weekday]bool{}
		for _, name := range p.Days {
			wd, ok := calWeekdays[strings.ToLower(strings.TrimSpace(name))]
			switch {
			case !ok:
				bad(fmt.Errorf("%s: day %q is not one of mon, tue, wed, thu, fri, sat, sun", where, name))
			case seen[wd]:
				bad(fmt.Errorf("%s: day %q appears twice", where, name))
			default:
				seen[wd] = true
				if valid {
					days[wd] = append(days[wd], owned{calSpan{start, end}, i})
				}
			}
		}
	}
	if w.allDay {
		for d := range w.week {
			w.week[d] = []calSpan{{0, calDaySeconds}}
		}
	}
	var weekly int64
	for d, spans := range days {
		slices.SortFunc(spans, func(a, b owned) int { return int(a.start - b.start) })
		var last *owned // the kept span that ends last
		for k, s := range spans {
			if last != nil && s.start < last.end {
				bad(fmt.Errorf("working_hours[%d] (%s–%s) overlaps working_hours[%d] (%s–%s) on %s",
					s.entry, calClock(s.start), calClock(s.end), last.entry, calClock(last.start), calClock(last.end), calDayName(time.Weekday(d))))
				continue
			}
			last = &spans[k]
			if n := len(w.week[d]); n > 0 && w.week[d][n-1].end == s.start {
				w.week[d][n-1].end = s.end // touching periods: one span, no seam
			} else {
				w.week[d] = append(w.week[d], s.calSpan)
			}
			weekly += s.end - s.start
		}
	}
	if w.allDay {
		weekly = calWeekSeconds
	} else if weekly == 0 {
		bad(fmt.Errorf("working_hours: no working time in the week: no deadline could ever fall due"))
	}
	w.weekly = time.Duration(weekly) * time.Second

	for i, h := range c.Holidays {
		t, err := time.Parse(time.DateOnly, h)
		if err != nil {
			bad(fmt.Errorf("holidays[%d]: %q is not a date such as 2026-12-25: %w", i, h, err))
			continue
		}
		w.holidays = append(w.holidays, calFloorDiv(t.Unix(), calDaySeconds))
	}
	slices.Sort(w.holidays)
	w.holidays = slices.Compact(w.holidays) // a date listed twice (two feasts on one day) is harmless

	if len(errs) > 0 {
		return nil, errs
	}
	return w, nil
}

// calParseClock reads "HH:MM" as seconds since midnight. "24:00" is accepted as an end only.
func calParseClock(s string, end bool) (int64, error) {
	if s == "24:00" && end {
		return calDaySeconds, nil
	}
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		if end {
			return 0, fmt.Errorf("%q is not a time from 00:00 to 24:00 written HH:MM", s)
		}
		return 0, fmt.Errorf("%q is not a time from 00:00 to 23:59 written HH:MM", s)
	}
	return int64(t.Hour()*3600 + t.Minute()*60), nil
}

func calClock(sec int64) string { return fmt.Sprintf("%02d:%02d", sec/3600, sec%3600/60) }

func calDayName(d time.Weekday) string { return strings.ToLower(d.String()[:3]) }

// calFloorDiv is a/b rounded down, also for negative a (instants before 1970).
func calFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Due returns the instant at which d of working time has elapsed after start: the deadline
// of an SLA of d. If start is outside working time, the clock starts at the next working
// instant; d = 0 thus gives start if it is working, else the next working instant (a
// negative d counts as 0). A deadline that falls exactly at the end of a period is that end,
// not the start of the next period: 8 hours from Monday 09:00 in a 09:00–17:00 office are
// Monday 17:00. The result is in UTC. A deadline after the year 9999 is returned as
// 10000-01-01 00:00 UTC.
func (w *WorkCalendar) Due(start time.Time, d time.Duration) time.Time {
	d = max(d, 0)
	if w.allDay && len(w.holidays) == 0 {
		return start.Add(d).UTC()
	}
	s := start.Unix()
	it := w.walk(s)
	for {
		if d > w.weekly && it.dayStart() > s {
			// Whole weeks before the deadline: skip them, leaving at least 1ns to count.
			d -= time.Duration(it.skipWeeks(int64((d-1)/w.weekly), calNoEnd)) * w.weekly
		}
		a, b := it.next()
		if a >= calHorizon {
			return time.Unix(max(calHorizon, s), 0).UTC()
		}
		from, to := time.Unix(a, 0), time.Unix(b, 0)
		if !to.After(start) {
			continue
		}
		if from.Before(start) {
			from = start
		}
		avail := to.Sub(from)
		if d <= avail {
			return from.Add(d).UTC()
		}
		d -= avail
	}
}

// Elapsed returns the working time between from and to (0 if to <= from). It pauses a
// deadline (the working time used before a deferral is Elapsed(created, deferred); on resume
// the new deadline is Due(resumed, sla - used)) and measures how many working hours a case
// is overdue. Elapsed(from, Due(from, d)) == d for every d >= 0 (up to the year 9999: time
// after it is not counted).
func (w *WorkCalendar) Elapsed(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	if w.allDay && len(w.holidays) == 0 {
		return to.Sub(from)
	}
	fs, ts := from.Unix(), to.Unix()
	it := w.walk(fs)
	var total time.Duration
	for {
		if it.dayStart() > fs {
			total += time.Duration(it.skipWeeks(calNoEnd, ts)) * w.weekly
		}
		a, b := it.next()
		lo, hi := time.Unix(a, 0), time.Unix(b, 0)
		if !lo.Before(to) || a >= calHorizon {
			return total
		}
		if lo.Before(from) {
			lo = from
		}
		if hi.After(to) {
			hi = to
		}
		if hi.After(lo) {
			total += hi.Sub(lo)
		}
	}
}

// IsWorking reports whether t falls in working time: its local date is not a holiday and its
// local wall-clock time is in one of that weekday's periods [start, end).
func (w *WorkCalendar) IsWorking(t time.Time) bool {
	_, off := t.In(w.loc).Zone()
	wall := t.Unix() + int64(off)
	day := calFloorDiv(wall, calDaySeconds)
	if _, holiday := slices.BinarySearch(w.holidays, day); holiday {
		return false
	}
	sec := wall - day*calDaySeconds // t's nanoseconds cannot carry it past an end: ends are whole seconds
	for _, s := range w.week[calWeekday(day)] {
		if s.start <= sec && sec < s.end {
			return true
		}
	}
	return false
}

// weekday of a local day number; 1970-01-01 was a Thursday.
func calWeekday(day int64) time.Weekday {
	return time.Weekday((day%7 + 7 + 4) % 7)
}

// calWalker yields the working intervals of a calendar, as real instants (Unix seconds), in
// order. It walks zone segments (stretches of time with one UTC offset, between two clock
// changes) and, within each, local days: inside a segment the wall clock is the instant plus
// a constant, so a day's periods map to instants by one subtraction. At a clock change the
// walker re-enters at the new offset, and clips to the segment, so a wall time that does not
// exist (spring forward) counts nothing and one that happens twice (fall back) counts twice,
// as real time does. The walker is a value owned by one call: the calendar stays read-only.
type calWalker struct {
	w          *WorkCalendar
	off        int64 // UTC offset of the segment, seconds
	segA, segB int64 // the segment: instants [segA, segB)
	day        int64 // local day being walked
	idx        int   // next span of day
	h          int   // index of the first holiday >= day
}

// walk starts a walker at the local day of instant u; intervals before u are yielded too
// and the caller skips them.
func (w *WorkCalendar) walk(u int64) *calWalker {
	it := &calWalker{w: w}
	it.enter(u)
	return it
}

// enter moves the walker to the zone segment holding instant u.
func (it *calWalker) enter(u int64) {
	t := time.Unix(u, 0).In(it.w.loc)
	_, off := t.Zone()
	it.off = int64(off)
	// The segment begins at u, not where the zone does: the walk has covered everything
	// before u (or, at its start, does not count it), and no interval is counted twice.
	it.segA, it.segB = u, calNoEnd
	if _, b := t.ZoneBounds(); !b.IsZero() { // zero when the zone never changes again
		it.segB = b.Unix()
	}
	if it.segB <= u {
		// ZoneBounds is wrong on the last UTC day of a leap year that the TZif footer rule
		// serves (in New York 2040-12-31 with this system's tz files, but already 2028-12-31
		// with Go's zoneinfo.zip or time/tzdata): it ends the zone before t
		// (golang.org/issue/81583). Use an hour instead, checked to hold one offset.
		it.segB = calOffsetChange(it.w.loc, u, u+3600, it.off)
	}
	it.day = calFloorDiv(u+it.off, calDaySeconds)
	it.idx = 0
	it.h, _ = slices.BinarySearch(it.w.holidays, it.day)
}

// calOffsetChange is the first second in (u, limit] at which the UTC offset of loc is no
// longer off, or limit. It assumes at most one change between u and limit (clocks never
// change twice within an hour).
func calOffsetChange(loc *time.Location, u, limit, off int64) int64 {
	offsetAt := func(v int64) int64 { _, o := time.Unix(v, 0).In(loc).Zone(); return int64(o) }
	if offsetAt(limit-1) == off {
		return limit
	}
	lo, hi := u, limit-1 // offsetAt(lo) == off, offsetAt(hi) != off
	for hi-lo > 1 {
		if mid := lo + (hi-lo)/2; offsetAt(mid) == off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// spans are the working spans of the walker's day: none on a holiday.
func (it *calWalker) spans() []calSpan {
	if it.h < len(it.w.holidays) && it.w.holidays[it.h] == it.day {
		return nil
	}
	return it.w.week[calWeekday(it.day)]
}

func (it *calWalker) nextDay() {
	it.day++
	it.idx = 0
	for it.h < len(it.w.holidays) && it.w.holidays[it.h] < it.day {
		it.h++
	}
}

// dayStart is the instant the walker's day begins at the segment's offset.
func (it *calWalker) dayStart() int64 { return it.day*calDaySeconds - it.off }

// next returns the next working interval [a, b). It always finds one: a calendar has
// working time every week, and holidays are finitely many.
func (it *calWalker) next() (a, b int64) {
	for {
		base := it.dayStart()
		if base >= it.segB {
			it.enter(it.segB)
			continue
		}
		spans := it.spans()
		if it.idx >= len(spans) {
			it.nextDay()
			continue
		}
		s := spans[it.idx]
		it.idx++
		a, b = base+s.start, base+s.end
		if a >= it.segB {
			it.enter(it.segB)
			continue
		}
		a, b = max(a, it.segA), min(b, it.segB)
		if a < b {
			return a, b
		}
	}
}

// skipWeeks skips up to k whole weeks from the start of the next unwalked day, as far as
// they lie wholly in the current zone segment, hold no holiday and end by the instant
// limit. Each skipped week holds exactly w.weekly of working time. It returns the number of
// weeks skipped; the caller makes sure the day's start is after its own start.
func (it *calWalker) skipWeeks(k, limit int64) int64 {
	if it.idx > 0 {
		if it.idx < len(it.spans()) {
			return 0
		}
		it.nextDay()
	}
	base := it.dayStart()
	if k <= 0 || base < it.segA {
		return 0
	}
	k = min(k, (it.segB-base)/calWeekSeconds, (limit-base)/calWeekSeconds)
	if it.h < len(it.w.holidays) {
		k = min(k, (it.w.holidays[it.h]-it.day)/7)
	}
	if k <= 0 {
		return 0
	}
	it.day += 7 * k // it.h still points at the first holiday after the skipped weeks
	return k
}
