package models

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// The ways supervisors' KPIs can be grouped: by who or what a case is about (its current
// department, its category, its area), or by when (the local day, or the ISO week starting
// on Monday, in the city's time zone).
const (
	GroupDepartment = "department"
	GroupCategory   = "category"
	GroupArea       = "area"
	GroupDay        = "day"
	GroupWeek       = "week"
)

// StatsGroupings lists the groupings, for validation and error messages.
var StatsGroupings = []string{GroupDepartment, GroupCategory, GroupArea, GroupDay, GroupWeek}

// MaxStatsDays bounds a KPI period: a year (a leap year's 366 days) at most, whatever the
// grouping, so that a request costs at most one year of a city's cases. Longer questions
// are asked a year at a time.
const MaxStatsDays = 366

// StatsQuery asks for a city's KPIs over [From, To).
type StatsQuery struct {
	JurisdictionID string
	From, To       time.Time
	GroupBy        string
	Now            time.Time
}

// KPIs are one group's figures. Counts are exact; hours are read from histograms (within
// HoursPrecision); rates and hours are nil when there is nothing to compute them from.
// docs/kpis.md defines each; caseFacts.items (models/rollup.go) is where the definitions
// live in code.
type KPIs struct {
	Key, Name      string
	Received       int64
	ReceivedClosed int64
	Dispatched     int64
	Closed         int64
	Backlog        int64
	Overdue        int64
	Due            int64
	ClosedOnTime   int64
	Reopened       int64
	Ratings        int64
	RatingSum      int64

	OnTimeRate, ClosureRate, ReworkRate *float64
	HoursToCloseP50, HoursToCloseP90    *float64
	HoursToFirstResponseP50             *float64
	Satisfaction                        *float64
}

// Stats are a city's KPIs per group and for the whole city.
type Stats struct {
	From, To time.Time
	Groups   []KPIs
	Total    KPIs
}

// timeLiteral writes an instant as an SQL literal the dialect compares with its stored times.
func (db *DB) timeLiteral(t time.Time) string {
	if db.dialect == SQLite {
		// The driver stores times as this text, in UTC; texts of this form sort as the times do.
		return "'" + t.UTC().Format("2006-01-02 15:04:05.999999999-07:00") + "'"
	}
	return "TIMESTAMPTZ '" + t.UTC().Format(time.RFC3339Nano) + "'"
}

// timeKey is the local date (day) or the local date of the Monday (week) of a time, in
// loc, for instants in [from, to); NULL outside it.
func (db *DB) timeKey(col, groupBy string, loc *time.Location, from, to time.Time) string {
	var key string
	if db.dialect == SQLite {
		// SQLite knows no time zones: the offset is piecewise constant between the zone's
		// transitions, which Go finds; the period is at most a year, so a few pieces.
		offset := func(t time.Time) string {
			_, off := t.In(loc).Zone()
			return fmt.Sprintf("'%+d seconds'", off)
		}
		var b strings.Builder
		t := from
		for {
			_, end := t.In(loc).ZoneBounds()
			if end.IsZero() || !end.Before(to) {
				break
			}
			fmt.Fprintf(&b, " WHEN julianday(%s) < julianday(%s) THEN %s", col, db.timeLiteral(end), offset(t))
			t = end
		}
		modifier := offset(t)
		if b.Len() > 0 {
			modifier = "CASE" + b.String() + " ELSE " + modifier + " END"
		}
		key = fmt.Sprintf("strftime('%%Y-%%m-%%d', %s, %s)", col, modifier)
		if groupBy == GroupWeek {
			key = "date(" + key + ", 'weekday 0', '-6 days')"
		}
	} else {
		tz := "'" + strings.ReplaceAll(loc.String(), "'", "''") + "'"
		local := fmt.Sprintf("(%s AT TIME ZONE %s)", col, tz)
		if groupBy == GroupWeek {
			local = "date_trunc('week', " + local + ")"
		}
		key = fmt.Sprintf("to_char(%s, 'YYYY-MM-DD')", local)
	}
	return fmt.Sprintf("CASE WHEN %s >= %s AND %s < %s THEN %s END", col, db.timeLiteral(from), col, db.timeLiteral(to), key)
}

// Stats computes a city's KPIs over a period, per group and for the whole city, from the
// rollup (models/rollup.go), building it first if it is not built for the city's time zone.
//
// The reads run in one transaction, on PostgreSQL a read-only snapshot: the rollup and the
// changes not yet folded into it are then read as of one moment, and every figure agrees
// with the others even while cases change and a fold runs.
func (db *DB) Stats(ctx context.Context, q StatsQuery) (*Stats, error) {
	return db.statsReading(ctx, q, (*DB).readOutside)
}

// partReader says whether to read a part day as the part outside the period (taken off the
// whole day) rather than the part inside it.
type partReader func(db *DB, ctx context.Context, jurisdictionID string, outside, inside span) (bool, error)

func (db *DB) statsReading(ctx context.Context, q StatsQuery, outside partReader) (*Stats, error) {
	j, loc, err := db.zone(ctx, q.JurisdictionID)
	if err != nil {
		return nil, err
	}
	built, err := db.statsBuilt(ctx, j)
	if err != nil {
		return nil, err
	}
	if !built {
		if err := db.RebuildStats(ctx, j.ID); err != nil {
			return nil, fmt.Errorf("build the KPI rollup of %s: %w", j.ID, err)
		}
	}
	var out *Stats
	err = db.InTx(ctx, func(tx *DB) error {
		if tx.dialect == Postgres {
			if err := tx.q(ctx).Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").Error; err != nil {
				return err
			}
		}
		var err error
		out, err = tx.stats(ctx, j, loc, q, outside)
		return err
	})
	return out, err
}

// stats reads the whole local days of the period from the rollup and the changes not yet
// folded, and the part days at either end from the cases themselves.
func (db *DB) stats(ctx context.Context, j *Jurisdiction, loc *time.Location, q StatsQuery, outside partReader) (*Stats, error) {
	from, to, now := q.From.UTC(), q.To.UTC(), q.Now.UTC()
	outside = remember(outside)
	groups, index, err := db.statsGroups(ctx, j.ID, q.GroupBy, loc, from, to)
	if err != nil {
		return nil, err
	}
	a := &statsAcc{groupBy: q.GroupBy, index: index, groups: groups, hours: make([][2]hist, len(groups)),
		total: KPIs{Key: "", Name: "total"}}
	dim := dimOf(q.GroupBy)
	pending, err := db.pendingStats(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	// Whole local days come from the rollup. A part day at either end comes from the cases:
	// the part inside the period, or the whole day from the rollup less the part outside it,
	// whichever holds fewer cases (readOutside). A period that ends now then reads the rest
	// of today (the deadlines still to come) rather than all of today so far.
	lo, hi := from, dayStart(to, loc)
	var parts []span
	if d0 := dayStart(from, loc); !d0.Equal(from) {
		d1 := nextDayStart(from, loc)
		before, inside := span{d0, from, -1}, span{from, d1, 1}
		out, err := outside(db, ctx, j.ID, before, inside)
		if err != nil {
			return nil, err
		}
		if out {
			lo, parts = d0, append(parts, before)
		} else {
			lo, parts = d1, append(parts, inside)
		}
	}
	if hi.Before(to) {
		d3 := nextDayStart(to, loc)
		after, inside := span{to, d3, -1}, span{hi, to, 1}
		out, err := outside(db, ctx, j.ID, after, inside)
		if err != nil {
			return nil, err
		}
		if out {
			parts, hi = append(parts, after), d3
		} else {
			parts = append(parts, inside)
		}
	}
	if !lo.Before(hi) {
		// Within one day: the period itself, from the cases.
		lo, hi, parts = from, from, []span{{from, to, 1}}
	}
	if lo.Before(hi) {
		if err := db.rollupRows(ctx, j.ID, dim, localDay(lo, loc), localDay(hi, loc), a); err != nil {
			return nil, err
		}
		pendingItems(pending, dim, loc, lo, hi, a.addItem)
	}
	for _, p := range parts {
		if err := db.exactItems(ctx, j.ID, dim, loc, p.from, p.to, p.sign, a.addItem); err != nil {
			return nil, err
		}
	}
	if err := db.overdue(ctx, j.ID, q.GroupBy, loc, from, to, now, a); err != nil {
		return nil, err
	}
	// The backlog is a state, not an event: the cases open at the end of the period (of each
	// day or week, for those groupings: the backlog at the start plus what came in less what
	// was closed, since a closed case stays closed).
	if q.GroupBy == GroupDay || q.GroupBy == GroupWeek {
		at, err := db.backlogAt(ctx, j.ID, dim, loc, pending, from, outside)
		if err != nil {
			return nil, err
		}
		var base int64
		for _, n := range at {
			base += n
		}
		for i := range a.groups {
			base += a.groups[i].Received - a.groups[i].Closed
			a.groups[i].Backlog = base
		}
		a.total.Backlog = base
	} else {
		at, err := db.backlogAt(ctx, j.ID, dim, loc, pending, to, outside)
		if err != nil {
			return nil, err
		}
		for key, n := range at {
			if k, _ := a.at(key); k != nil {
				k.Backlog += n
			}
			a.total.Backlog += n
		}
	}
	for i := range a.groups {
		a.groups[i].finish(&a.hours[i])
	}
	a.total.finish(&a.totalHours)
	// Cases without the attribute form a group when they add anything: a case routed since
	// it came in leaves a -1 and a +1 under "" that are not worth a row.
	if a.none != nil && !a.none.zero() {
		a.none.finish(&a.noneHours)
		a.groups = append(a.groups, *a.none)
	}
	return &Stats{From: from, To: to, Groups: a.groups, Total: a.total}, nil
}

// statsAcc adds figures up per group and for the whole city.
type statsAcc struct {
	groupBy    string
	index      map[string]int
	groups     []KPIs
	hours      [][2]hist
	none       *KPIs // cases without the grouping's attribute (not yet routed, no area)
	noneHours  [2]hist
	total      KPIs
	totalHours [2]hist
}

// at is the group of a key (an id; a date for day and week groupings): nil for one the
// answer does not list (a date outside the period: counted in the total only).
func (a *statsAcc) at(key string) (*KPIs, *[2]hist) {
	if key == "" && a.groupBy != GroupDay && a.groupBy != GroupWeek {
		if a.none == nil {
			a.none = &KPIs{Key: "", Name: "(none)"}
		}
		return a.none, &a.noneHours
	}
	if i, ok := a.index[key]; ok {
		return &a.groups[i], &a.hours[i]
	}
	return nil, nil
}

// slot is the group of a day and key of the rollup.
func (a *statsAcc) slot(day int32, key string) (*KPIs, *[2]hist) {
	switch a.groupBy {
	case GroupDay:
		return a.at(dayDate(day))
	case GroupWeek:
		return a.at(dayDate(day - ((day+3)%7+7)%7)) // the Monday: 1970-01-01 was a Thursday
	}
	return a.at(key)
}

// rollupRows adds a city's rows of stats_days of days [first, last) into the groups.
// A year of a city is some thousands of rows: read without reflection, each histogram
// decoded straight into its group's and the total's.
func (db *DB) rollupRows(ctx context.Context, jurisdictionID string, dim statsDim, first, last int32, a *statsAcc) error {
	rows, err := db.q(ctx).Raw("SELECT day, key, received, received_closed, dispatched, closed, reopened, due,"+
		" closed_on_time, ratings, rating_sum, close_hours, response_hours FROM stats_days"+
		" WHERE jurisdiction_id = ? AND dim = ? AND day >= ? AND day < ?", jurisdictionID, dim, first, last).Rows()
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	var (
		r     statsDay
		close []byte
		resp  []byte
	)
	dest := []any{&r.Day, &r.Key}
	for _, p := range r.counts() {
		dest = append(dest, p)
	}
	dest = append(dest, &close, &resp)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return translate(err)
		}
		k, h := a.slot(r.Day, r.Key)
		var c statsCell
		for i, p := range r.counts() {
			c.counts[i] = *p
		}
		a.addCounts(k, &c)
		for i, p := range [2][]byte{close, resp} {
			if err := decodeHist(p, func(b, n int64) {
				if h != nil {
					h[i].add(b, n)
				}
				a.totalHours[i].add(b, n)
			}); err != nil {
				return err
			}
		}
	}
	return translate(rows.Err())
}

// addCounts adds a cell's counts into a group (nil: none) and the total.
func (a *statsAcc) addCounts(k *KPIs, c *statsCell) {
	for _, to := range []*KPIs{k, &a.total} {
		if to == nil {
			continue
		}
		for i, p := range to.counts() {
			*p += c.counts[i]
		}
	}
}

// addItem adds one item into its group and the total, with no cell in between (a cell's
// histograms would be allocated for each item).
func (a *statsAcc) addItem(day int32, key string, m measure, v, sign int64) {
	k, h := a.slot(day, key)
	if k != nil {
		addMeasure(k, h, m, v, sign)
	}
	addMeasure(&a.total, &a.totalHours, m, v, sign)
}

func addMeasure(k *KPIs, h *[2]hist, m measure, v, sign int64) {
	if int(m) < nCounts {
		*k.counts()[m] += v * sign
		return
	}
	h[int(m)-nCounts].add(v, sign)
}

// counts lists the KPIs' counts in measure order.
func (k *KPIs) counts() [nCounts]*int64 {
	return [nCounts]*int64{&k.Received, &k.ReceivedClosed, &k.Dispatched, &k.Closed, &k.Reopened,
		&k.Due, &k.ClosedOnTime, &k.Ratings, &k.RatingSum}
}

// zero tells whether every count is 0.
func (k *KPIs) zero() bool {
	for _, p := range k.counts() {
		if *p != 0 {
			return false
		}
	}
	return k.Backlog == 0 && k.Overdue == 0
}

// finish derives the percentiles and the rates.
func (k *KPIs) finish(h *[2]hist) {
	k.HoursToCloseP50, k.HoursToCloseP90 = h[0].percentile(0.5), h[0].percentile(0.9)
	k.HoursToFirstResponseP50 = h[1].percentile(0.5)
	k.rates()
}

// nextDayStart is the instant the local day after t's begins.
func nextDayStart(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// pendingStats reads a city's changes not yet folded into the rollup.
func (db *DB) pendingStats(ctx context.Context, jurisdictionID string) ([]statsChange, error) {
	var chs []statsChange
	err := db.q(ctx).Where("jurisdiction_id = ?", jurisdictionID).Order("id").Find(&chs).Error
	return chs, translate(err)
}

// pendingItems passes on the items of changes that fall in [from, to) (from zero: since ever).
func pendingItems(chs []statsChange, dim statsDim, loc *time.Location, from, to time.Time, fn func(day int32, key string, m measure, v, sign int64)) {
	for i := range chs {
		f := &chs[i].Facts
		f.items(func(at time.Time, m measure, v int64) {
			if (from.IsZero() || !at.Before(from)) && at.Before(to) {
				fn(localDay(at, loc), f.key(dim), m, v, int64(chs[i].Sign))
			}
		})
	}
}

// span is a part of a day counted from the cases, added (sign 1) or taken off (-1).
type span struct {
	from, to time.Time
	sign     int64
}

// exactItems reads the cases with any fact in [from, to) and passes on those items, times sign.
func (db *DB) exactItems(ctx context.Context, jurisdictionID string, dim statsDim, loc *time.Location, from, to time.Time, sign int64, fn func(day int32, key string, m measure, v, sign int64)) error {
	if !from.Before(to) {
		return nil
	}
	where, args := factsIn(jurisdictionID, from, to)
	return db.scanFacts(ctx, where, args, func(f *caseFacts) {
		f.items(func(at time.Time, m measure, v int64) {
			if !at.Before(from) && at.Before(to) {
				fn(localDay(at, loc), f.key(dim), m, v, sign)
			}
		})
	})
}

// factsIn selects the cases of a city with any fact in [from, to).
func factsIn(jurisdictionID string, from, to time.Time) (string, []any) {
	cols := []string{"created_at", "dispatched_at", "first_response_at", "closed_at", "due_at", "rated_at"}
	conds := make([]string, len(cols))
	args := []any{jurisdictionID}
	for i, c := range cols {
		conds[i] = "(c." + c + " >= ? AND c." + c + " < ?)"
		// In UTC, as the times are stored: SQLite compares them as text.
		args = append(args, from.UTC(), to.UTC())
	}
	return "c.jurisdiction_id = ? AND (" + strings.Join(conds, " OR ") + ")", args
}

// remember asks read each question once: the backlog at the end of a period asks about its
// last day again.
func remember(read partReader) partReader {
	seen := map[[4]int64]bool{}
	return func(db *DB, ctx context.Context, jurisdictionID string, outside, inside span) (bool, error) {
		k := [4]int64{outside.from.UnixNano(), outside.to.UnixNano(), inside.from.UnixNano(), inside.to.UnixNano()}
		if v, ok := seen[k]; ok {
			return v, nil
		}
		v, err := read(db, ctx, jurisdictionID, outside, inside)
		if err == nil {
			seen[k] = v
		}
		return v, err
	}
}

// partProbe is how far the cases of a part day are counted before choosing how to read it.
const partProbe = 500

// readOutside chooses how to read a part day: the part outside the period (taken off the
// whole day from the rollup) or the part inside it, whichever holds fewer cases. The clock
// alone misleads: just after midnight the part of today so far is short, but after a
// burst of reports it holds them all, while the rest of today holds only the deadlines
// still to come. The shorter part is counted first, up to partProbe cases; the other only
// as far as it takes to be sure it holds more; both over the probe, the shorter is read.
func (db *DB) readOutside(ctx context.Context, jurisdictionID string, outside, inside span) (bool, error) {
	short, long := outside, inside
	outsideShorter := outside.to.Sub(outside.from) < inside.to.Sub(inside.from)
	if !outsideShorter {
		short, long = inside, outside
	}
	n, err := db.countFacts(ctx, jurisdictionID, short, partProbe)
	if err != nil || n == 0 {
		return outsideShorter, err
	}
	m, err := db.countFacts(ctx, jurisdictionID, long, n)
	if err != nil {
		return false, err
	}
	if m < n {
		return !outsideShorter, nil // the longer part holds fewer cases
	}
	return outsideShorter, nil
}

// countFacts counts the cases with a fact in a span, up to limit.
func (db *DB) countFacts(ctx context.Context, jurisdictionID string, s span, limit int64) (int64, error) {
	where, args := factsIn(jurisdictionID, s.from, s.to)
	var n int64
	err := db.q(ctx).Raw("SELECT COUNT(*) FROM (SELECT 1 FROM cases c WHERE "+where+" LIMIT ?) t", append(args, limit)...).Row().Scan(&n)
	return n, translate(err)
}

// backlogAt counts the cases open at t per group: received before it less closed before it
// (closed is final). Before a day's start that is the rollup's days before it and the changes
// not yet folded; t's own day is then counted like a part day of a period (see stats):
// the part before t added, or the part after it taken off the whole day.
func (db *DB) backlogAt(ctx context.Context, jurisdictionID string, dim statsDim, loc *time.Location, pending []statsChange, t time.Time, outside partReader) (map[string]int64, error) {
	start, next := dayStart(t, loc), nextDayStart(t, loc)
	upTo, part := start, span{start, t, 1}
	if out, err := outside(db, ctx, jurisdictionID, span{t, next, -1}, part); err != nil {
		return nil, err
	} else if out {
		upTo, part = next, span{t, next, -1}
	}
	out := map[string]int64{}
	var rows []struct {
		Key string
		N   int64
	}
	if err := db.q(ctx).Raw("SELECT key, SUM(received) - SUM(closed) AS n FROM stats_days"+
		" WHERE jurisdiction_id = ? AND dim = ? AND day < ? GROUP BY key", jurisdictionID, dim, localDay(upTo, loc)).
		Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range rows {
		out[r.Key] += r.N
	}
	net := func(_ int32, key string, m measure, v, sign int64) {
		switch m {
		case mReceived:
			out[key] += v * sign
		case mClosed:
			out[key] -= v * sign
		}
	}
	pendingItems(pending, dim, loc, time.Time{}, upTo, net)
	if err := db.exactItems(ctx, jurisdictionID, dim, loc, part.from, part.to, part.sign, net); err != nil {
		return nil, err
	}
	return out, nil
}

// overdue counts, now, the cases a department is working on (dispatched, accepted, in
// progress) whose deadline has passed: per group, and for day and week groupings on the day
// of their deadline when it is in the period. It is a state now, so it is read from the cases.
func (db *DB) overdue(ctx context.Context, jurisdictionID, groupBy string, loc *time.Location, from, to, now time.Time, a *statsAcc) error {
	var key string
	switch groupBy {
	case GroupDepartment:
		key = "c.department_id"
	case GroupCategory:
		key = "c.category_id"
	case GroupArea:
		key = "c.area_id"
	default:
		key = db.timeKey("c.due_at", groupBy, loc, from, to)
	}
	var rows []struct {
		K sql.NullString
		N int64
	}
	if err := db.q(ctx).Raw("SELECT "+key+" AS k, COUNT(*) AS n FROM cases c WHERE c.jurisdiction_id = ?"+
		" AND c.status IN ('dispatched', 'accepted', 'in_progress') AND c.due_at < ? GROUP BY "+key,
		jurisdictionID, now).Scan(&rows).Error; err != nil {
		return translate(err)
	}
	for _, r := range rows {
		a.total.Overdue += r.N
		if !r.K.Valid && (groupBy == GroupDay || groupBy == GroupWeek) {
			continue
		}
		if k, _ := a.at(r.K.String); k != nil {
			k.Overdue += r.N
		}
	}
	return nil
}

// rates derives the rates from the counts: on time = closed on time ÷ due; closure = of the
// cases received, those closed; rework = of the cases closed, those reopened; satisfaction =
// the mean rating. Each is nil when its denominator is 0.
func (k *KPIs) rates() {
	ratio := func(a, b int64) *float64 {
		if b == 0 {
			return nil
		}
		r := float64(a) / float64(b)
		return &r
	}
	k.OnTimeRate = ratio(k.ClosedOnTime, k.Due)
	k.ClosureRate = ratio(k.ReceivedClosed, k.Received)
	k.ReworkRate = ratio(k.Reopened, k.Closed)
	k.Satisfaction = ratio(k.RatingSum, k.Ratings)
}

// statsGroups lists the groups a grouping has, in order, every one even without cases:
// departments, categories and areas by code; days and weeks in time order. The index maps
// the value the SQL groups by (an id, a date) to its group.
func (db *DB) statsGroups(ctx context.Context, jurisdictionID, groupBy string, loc *time.Location, from, to time.Time) ([]KPIs, map[string]int, error) {
	var out []KPIs
	index := map[string]int{}
	switch groupBy {
	case GroupDepartment, GroupCategory, GroupArea:
		table := map[string]string{GroupDepartment: "departments", GroupCategory: "categories", GroupArea: "areas"}[groupBy]
		var rows []struct{ ID, Code, Name string }
		if err := db.q(ctx).Table(table).Select("id, code, name").Where("jurisdiction_id = ?", jurisdictionID).
			Order("code").Scan(&rows).Error; err != nil {
			return nil, nil, translate(err)
		}
		for i, r := range rows {
			out = append(out, KPIs{Key: r.Code, Name: r.Name})
			index[r.ID] = i
		}
	case GroupDay, GroupWeek:
		for i, d := range StatsDays(groupBy, loc, from, to) {
			out = append(out, KPIs{Key: d, Name: d})
			index[d] = i
		}
	default:
		return nil, nil, Problemf(ErrInvalid, "invalid-group-by", "group_by must be one of %s", strings.Join(StatsGroupings, ", "))
	}
	return out, index, nil
}

// StatsDays lists the local dates of the days (or of the Mondays of the weeks) that
// [from, to) touches, in loc.
func StatsDays(groupBy string, loc *time.Location, from, to time.Time) []string {
	if !to.After(from) {
		return nil
	}
	f := from.In(loc)
	day := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc)
	step := 1
	if groupBy == GroupWeek {
		day = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		step = 7
	}
	var out []string
	for ; day.Before(to); day = day.AddDate(0, 0, step) {
		out = append(out, day.Format(time.DateOnly))
	}
	return out
}

// OverdueCases lists a city's cases past their deadline now, that a department is still
// working on (dispatched, accepted, in progress), the longest overdue first.
func (db *DB) OverdueCases(ctx context.Context, jurisdictionID string, now time.Time, limit int) ([]Case, error) {
	var cs []Case
	err := db.q(ctx).Where("jurisdiction_id = ? AND "+openStatusesSQL+" AND status <> 'triage' AND due_at < ?", jurisdictionID, now.UTC()).
		Order("due_at, id").Limit(limit).Find(&cs).Error
	return cs, translate(err)
}

// BreachingCases lists a city's worked cases whose deadline falls within the next window,
// the soonest first: those about to become overdue.
func (db *DB) BreachingCases(ctx context.Context, jurisdictionID string, now time.Time, window time.Duration, limit int) ([]Case, error) {
	var cs []Case
	err := db.q(ctx).Where("jurisdiction_id = ? AND "+openStatusesSQL+" AND status <> 'triage' AND due_at >= ? AND due_at < ?",
		jurisdictionID, now.UTC(), now.Add(window).UTC()).Order("due_at, id").Limit(limit).Find(&cs).Error
	return cs, translate(err)
}

// Hotspot is an area or a category with how many cases were received in it.
type Hotspot struct {
	Code, Name string
	Count      int64
}

// Hotspots lists the areas (by "area") or categories (by "category") with the most cases
// received in [from, to), the most first; cases without an area are left out.
func (db *DB) Hotspots(ctx context.Context, jurisdictionID, by string, from, to time.Time, limit int) ([]Hotspot, error) {
	table, col := "areas", "area_id"
	if by == GroupCategory {
		table, col = "categories", "category_id"
	}
	var out []Hotspot
	err := db.q(ctx).Raw("SELECT g.code AS code, g.name AS name, t.n AS count FROM (SELECT "+col+" AS gid, COUNT(*) AS n FROM cases"+
		" WHERE jurisdiction_id = ? AND created_at >= ? AND created_at < ? AND "+col+" IS NOT NULL GROUP BY "+col+") t"+
		" JOIN "+table+" g ON g.id = t.gid ORDER BY t.n DESC, g.code LIMIT ?", jurisdictionID, from.UTC(), to.UTC(), limit).
		Scan(&out).Error
	return out, translate(err)
}
