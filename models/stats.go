package models

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"sort"
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

// KPIs are one group's figures. Counts are exact; rates and hours are nil when there is
// nothing to compute them from. docs/kpis.md defines each; kpiAnchors below is where the
// definitions live in code.
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

// kpiCount is a count: how many of an anchor's cases (or events) satisfy expr (SQL
// evaluating to 1 or 0).
type kpiCount struct {
	name string
	expr string
}

// kpiHours is a percentile of hours between two times of each of an anchor's cases.
type kpiHours struct {
	name     string
	fraction float64
	from, to string
}

// kpiAnchor is a set of measures counted at the time of one kind of event: every KPI is
// counted in the period (and for day and week groupings, on the day) its event happened.
// The time is read from the case row where the lifecycle writes it in the same transaction
// as the event (Transition), so that a year of a city is one index range scan per kind of
// event rather than a walk of the whole event log; reopens, deferrals and ratings, which the
// case row does not keep, are read from the log itself.
type kpiAnchor struct {
	// from is the table (with the cases aliased c), column the event's time.
	from, column string
	// where narrows the anchor's rows.
	where string
	// snapshot anchors are not bounded by the period: they count the state now.
	snapshot bool
	counts   []kpiCount
	hours    []kpiHours
}

// The SQL fragments of the KPI definitions. Closed is terminal in the lifecycle (reopen
// starts from resolved), so a case's closing event is its last status change.
const (
	sqlReopened  = "c.id IN (SELECT case_id FROM case_events WHERE type = 'reopen')"
	sqlDeferred  = "c.id IN (SELECT case_id FROM case_events WHERE type = 'defer')"
	sqlWorking   = "c.status IN ('dispatched', 'accepted', 'in_progress')"
	sqlFinished  = "COALESCE(c.resolved_at, c.closed_at)"
	sqlCasesOnly = "cases c"
	sqlRatings   = "case_events e JOIN cases c ON c.id = e.case_id"
)

// kpiAnchors defines every KPI, once. Each line says which event counts and which cases.
func (db *DB) kpiAnchors(now time.Time) []kpiAnchor {
	rating := "CAST(e.data->>'rating' AS INTEGER)"
	if db.dialect == SQLite {
		rating = "CAST(json_extract(e.data, '$.rating') AS INTEGER)"
	}
	return []kpiAnchor{{
		// received: cases submitted in the period (their first event, submit).
		// received_closed: of those, the ones closed now (the numerator of the closure rate).
		from: sqlCasesOnly, column: "c.created_at",
		counts: []kpiCount{{"received", "1"}, {"received_closed", "CASE WHEN c.status = 'closed' THEN 1 ELSE 0 END"}},
	}, {
		// dispatched: cases sent to the department that holds them now (route, dispatch from
		// triage, transfer or reopen: the last of these) in the period.
		from: sqlCasesOnly, column: "c.dispatched_at",
		counts: []kpiCount{{"dispatched", "1"}},
	}, {
		// closed: cases closed in the period (confirm, timeout or close).
		// reopened: of those, the ones a reporter reopened at least once (rework).
		// hours to close: from received to closed, of the cases closed in the period.
		from: sqlCasesOnly, column: "c.closed_at",
		counts: []kpiCount{{"closed", "1"}, {"reopened", "CASE WHEN " + sqlReopened + " THEN 1 ELSE 0 END"}},
		hours: []kpiHours{{"hours_to_close_p50", 0.5, "c.created_at", "c.closed_at"},
			{"hours_to_close_p90", 0.9, "c.created_at", "c.closed_at"}},
	}, {
		// due: cases whose deadline falls in the period, deferred cases (缓办) left out.
		// closed_on_time: of those, the ones closed now whose work was finished (resolved, or
		// closed straight from work) by the deadline.
		from: sqlCasesOnly, column: "c.due_at", where: "NOT (" + sqlDeferred + ")",
		counts: []kpiCount{{"due", "1"}, {"closed_on_time",
			"CASE WHEN c.status = 'closed' AND " + sqlFinished + " <= c.due_at THEN 1 ELSE 0 END"}},
	}, {
		// hours to first response: from received to the first response of staff (accept,
		// reject, resolve or close), of the cases first responded to in the period.
		from: sqlCasesOnly, column: "c.first_response_at",
		hours: []kpiHours{{"hours_to_first_response_p50", 0.5, "c.created_at", "c.first_response_at"}},
	}, {
		// ratings and satisfaction: the reporters' ratings (1 to 5) given in the period, with
		// their confirmation or afterwards.
		from: sqlRatings, column: "e.created_at",
		where:  "e.type IN ('rate', 'confirm') AND " + rating + " IS NOT NULL",
		counts: []kpiCount{{"ratings", "1"}, {"rating_sum", rating}},
	}, {
		// overdue: cases a department is working on (dispatched, accepted, in progress) whose
		// deadline has passed, now; in day and week groupings, on the day of their deadline.
		from: sqlCasesOnly, column: "c.due_at", snapshot: true,
		where:  sqlWorking + " AND c.due_at < " + db.timeLiteral(now),
		counts: []kpiCount{{"overdue", "1"}},
	}}
}

// backlogWhere selects the cases open at t: received before it and not closed before it.
func (db *DB) backlogWhere(t time.Time) string {
	lit := db.timeLiteral(t)
	return "c.created_at < " + lit + " AND (c.status <> 'closed' OR c.closed_at >= " + lit + ")"
}

// timeLiteral writes an instant as an SQL literal the dialect compares with its stored times.
func (db *DB) timeLiteral(t time.Time) string {
	if db.dialect == SQLite {
		// The driver stores times as this text, in UTC; texts of this form sort as the times do.
		return "'" + t.UTC().Format("2006-01-02 15:04:05.999999999-07:00") + "'"
	}
	return "TIMESTAMPTZ '" + t.UTC().Format(time.RFC3339Nano) + "'"
}

// hoursSQL is the hours between two times.
func (db *DB) hoursSQL(from, to string) string {
	if db.dialect == SQLite {
		return fmt.Sprintf("((julianday(%s) - julianday(%s)) * 24.0)", to, from)
	}
	return fmt.Sprintf("(EXTRACT(EPOCH FROM (%s - %s)) / 3600.0)", to, from)
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

// Stats computes a city's KPIs over a period, per group and for the whole city.
//
// On PostgreSQL the queries run in one read-only transaction: every figure is read from the
// same snapshot, so they agree with each other even while cases change; and with the memory
// to sort a year of a large city's times for the percentiles in memory rather than on disk.
func (db *DB) Stats(ctx context.Context, q StatsQuery) (*Stats, error) {
	if db.dialect != Postgres {
		return db.stats(ctx, q)
	}
	var out *Stats
	err := db.InTx(ctx, func(tx *DB) error {
		for _, set := range []string{"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", "SET LOCAL work_mem = '64MB'"} {
			if err := tx.q(ctx).Exec(set).Error; err != nil {
				return err
			}
		}
		var err error
		out, err = tx.stats(ctx, q)
		return err
	})
	return out, err
}

func (db *DB) stats(ctx context.Context, q StatsQuery) (*Stats, error) {
	j, err := db.Jurisdiction(ctx, q.JurisdictionID)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(j.Timezone)
	if err != nil {
		return nil, fmt.Errorf("time zone of %s: %w", j.ID, err)
	}
	from, to, now := q.From.UTC(), q.To.UTC(), q.Now.UTC()
	groups, index, err := db.statsGroups(ctx, j.ID, q.GroupBy, loc, from, to)
	if err != nil {
		return nil, err
	}
	timed := q.GroupBy == GroupDay || q.GroupBy == GroupWeek
	var none *KPIs // cases without the grouping's attribute (not yet routed, no area)
	total := KPIs{Key: "", Name: "total"}
	target := func(key sql.NullString) *KPIs {
		if !key.Valid {
			if timed {
				return nil // outside the period: counted in the total only
			}
			if none == nil {
				none = &KPIs{Key: "", Name: "(none)"}
			}
			return none
		}
		if i, ok := index[key.String]; ok {
			return &groups[i]
		}
		return nil
	}
	keyOf := func(col string, snapshot bool) string {
		switch q.GroupBy {
		case GroupDepartment:
			return "c.department_id"
		case GroupCategory:
			return "c.category_id"
		case GroupArea:
			return "c.area_id"
		}
		return db.timeKey(col, q.GroupBy, loc, from, to)
	}
	for _, a := range db.kpiAnchors(now) {
		where := []string{"c.jurisdiction_id = ?"}
		args := []any{j.ID}
		if !a.snapshot {
			where = append(where, a.column+" >= ?", a.column+" < ?")
			args = append(args, from, to)
		}
		if a.where != "" {
			where = append(where, a.where)
		}
		key := keyOf(a.column, a.snapshot)
		if err := db.anchorCounts(ctx, a, key, where, args, target, &total); err != nil {
			return nil, err
		}
		if err := db.anchorHours(ctx, a, key, where, args, target, &total); err != nil {
			return nil, err
		}
	}
	// The backlog is a state, not an event: the cases open at the end of the period (of each
	// day or week, for those groupings: the backlog at the start plus what came in less what
	// was closed, since a closed case stays closed).
	if timed {
		base, err := db.countWhere(ctx, j.ID, db.backlogWhere(from))
		if err != nil {
			return nil, err
		}
		for i := range groups {
			base += groups[i].Received - groups[i].Closed
			groups[i].Backlog = base
		}
		total.Backlog = base
	} else {
		a := kpiAnchor{from: sqlCasesOnly, where: db.backlogWhere(to), counts: []kpiCount{{"backlog", "1"}}}
		if err := db.anchorCounts(ctx, a, keyOf("", true), []string{"c.jurisdiction_id = ?", a.where}, []any{j.ID}, target, &total); err != nil {
			return nil, err
		}
	}
	if none != nil {
		groups = append(groups, *none)
	}
	for i := range groups {
		groups[i].rates()
	}
	total.rates()
	return &Stats{From: from, To: to, Groups: groups, Total: total}, nil
}

// anchorCounts adds up an anchor's counts per group and in the total.
func (db *DB) anchorCounts(ctx context.Context, a kpiAnchor, key string, where []string, args []any, target func(sql.NullString) *KPIs, total *KPIs) error {
	if len(a.counts) == 0 {
		return nil
	}
	cols := []string{key + " AS k"}
	for _, c := range a.counts {
		cols = append(cols, "COALESCE(SUM("+c.expr+"), 0)")
	}
	query := "SELECT " + strings.Join(cols, ", ") + " FROM " + a.from + " WHERE " + strings.Join(where, " AND ") + " GROUP BY " + key
	rows, err := db.q(ctx).Raw(query, args...).Rows()
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k sql.NullString
		vals := make([]int64, len(a.counts))
		dest := []any{&k}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return translate(err)
		}
		for i, c := range a.counts {
			total.add(c.name, vals[i])
			if g := target(k); g != nil {
				g.add(c.name, vals[i])
			}
		}
	}
	return translate(rows.Err())
}

// anchorHours computes an anchor's percentiles of hours per group and in the total:
// PostgreSQL with percentile_cont, SQLite (which has none) by reading the hours and
// interpolating the same way (percentileCont).
func (db *DB) anchorHours(ctx context.Context, a kpiAnchor, key string, where []string, args []any, target func(sql.NullString) *KPIs, total *KPIs) error {
	if len(a.hours) == 0 {
		return nil
	}
	h := a.hours[0]
	hours := db.hoursSQL(h.from, h.to)
	where = append(slices.Clone(where), h.to+" IS NOT NULL")
	tail := " FROM " + a.from + " WHERE " + strings.Join(where, " AND ")
	if db.dialect == Postgres {
		cols := []string{key + " AS k", "GROUPING(" + key + ") AS g"}
		for _, h := range a.hours {
			cols = append(cols, fmt.Sprintf("percentile_cont(%g) WITHIN GROUP (ORDER BY %s)", h.fraction, db.hoursSQL(h.from, h.to)))
		}
		rows, err := db.q(ctx).Raw("SELECT "+strings.Join(cols, ", ")+tail+" GROUP BY GROUPING SETS (("+key+"), ())", args...).Rows()
		if err != nil {
			return translate(err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				k sql.NullString
				g int
			)
			vals := make([]sql.NullFloat64, len(a.hours))
			dest := []any{&k, &g}
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			if err := rows.Scan(dest...); err != nil {
				return translate(err)
			}
			kp := total
			if g == 0 {
				if kp = target(k); kp == nil {
					continue
				}
			}
			for i, h := range a.hours {
				if vals[i].Valid {
					v := vals[i].Float64
					kp.setHours(h.name, &v)
				}
			}
		}
		return translate(rows.Err())
	}
	rows, err := db.q(ctx).Raw("SELECT "+key+", "+hours+tail, args...).Rows()
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	per := map[*KPIs][]float64{}
	for rows.Next() {
		var (
			k sql.NullString
			v float64
		)
		if err := rows.Scan(&k, &v); err != nil {
			return translate(err)
		}
		per[total] = append(per[total], v)
		if g := target(k); g != nil {
			per[g] = append(per[g], v)
		}
	}
	if err := rows.Err(); err != nil {
		return translate(err)
	}
	for kp, vs := range per {
		for _, h := range a.hours {
			kp.setHours(h.name, percentileCont(vs, h.fraction))
		}
	}
	return nil
}

// percentileCont is PostgreSQL's percentile_cont: the value at fraction f of the sorted
// values, interpolated linearly between the two nearest; nil for no values.
func percentileCont(vs []float64, f float64) *float64 {
	if len(vs) == 0 {
		return nil
	}
	s := slices.Clone(vs)
	sort.Float64s(s)
	pos := f * float64(len(s)-1)
	lo := math.Floor(pos)
	v := s[int(lo)]
	if int(lo)+1 < len(s) {
		v += (pos - lo) * (s[int(lo)+1] - s[int(lo)])
	}
	return &v
}

// countWhere counts a city's cases that satisfy cond.
func (db *DB) countWhere(ctx context.Context, jurisdictionID, cond string) (int64, error) {
	var n int64
	err := db.q(ctx).Raw("SELECT COUNT(*) FROM cases c WHERE c.jurisdiction_id = ? AND "+cond, jurisdictionID).Scan(&n).Error
	return n, translate(err)
}

func (k *KPIs) add(name string, v int64) {
	switch name {
	case "received":
		k.Received += v
	case "received_closed":
		k.ReceivedClosed += v
	case "dispatched":
		k.Dispatched += v
	case "closed":
		k.Closed += v
	case "reopened":
		k.Reopened += v
	case "due":
		k.Due += v
	case "closed_on_time":
		k.ClosedOnTime += v
	case "ratings":
		k.Ratings += v
	case "rating_sum":
		k.RatingSum += v
	case "overdue":
		k.Overdue += v
	case "backlog":
		k.Backlog += v
	default:
		panic("unknown KPI count " + name)
	}
}

func (k *KPIs) setHours(name string, v *float64) {
	switch name {
	case "hours_to_close_p50":
		k.HoursToCloseP50 = v
	case "hours_to_close_p90":
		k.HoursToCloseP90 = v
	case "hours_to_first_response_p50":
		k.HoursToFirstResponseP50 = v
	default:
		panic("unknown KPI percentile " + name)
	}
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
