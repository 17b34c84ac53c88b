package models

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"time"

	"gorm.io/gorm/clause"
)

// How supervisors' KPIs are kept, so that a year of a city of a million cases is read from a
// few thousand rows rather than by walking the million cases (docs/kpis.md):
//
//   - A case's facts (caseFacts) are what the KPIs read of it: its groups, when it was
//     received, dispatched, first answered, resolved and closed, when it is due, whether it
//     was reopened or deferred, and its rating. caseFacts.items is where every KPI but the
//     two states (overdue, backlog) is defined: each item is a count, or an hour value for a
//     percentile, at the moment it counts.
//   - stats_days keeps, per city, grouping, local day and group, the sum of the items that
//     fell on that day: the counts, and histograms of the hour values (hourBucket).
//   - Every change of a case writes its facts before (-1) and after (+1) into stats_changes,
//     in the change's own transaction. That is an insert, so writers never queue on a hot
//     rollup row; a periodic task (FoldStats) adds them into stats_days and deletes them in
//     one transaction, so in any snapshot each change is in exactly one of the two tables.
//   - Stats reads, in one snapshot, the whole days of the period from stats_days plus the
//     changes not yet folded, and the part days at either end from the cases themselves.

// statsDim is a grouping as stats_days keys it. Every case has exactly one key in each (""
// for none), so the rows of any one of them add up to the whole city: the day and week
// groupings read the department rows.
type statsDim int16

const (
	dimDepartment statsDim = 1
	dimCategory   statsDim = 2
	dimArea       statsDim = 3
)

var statsDims = [...]statsDim{dimDepartment, dimCategory, dimArea}

func dimOf(groupBy string) statsDim {
	switch groupBy {
	case GroupCategory:
		return dimCategory
	case GroupArea:
		return dimArea
	}
	return dimDepartment
}

// measure is one of the additive figures an item adds to: counts first, then the two hour
// histograms.
type measure int

const (
	mReceived measure = iota
	mReceivedClosed
	mDispatched
	mClosed
	mReopened
	mDue
	mClosedOnTime
	mRatings
	mRatingSum
	mHoursToClose
	mHoursToFirstResponse
)

// nCounts is how many of the measures are counts; the rest are histograms.
const nCounts = int(mHoursToClose)

// caseFacts are what the KPIs read of a case.
type caseFacts struct {
	DepartmentID    *string
	CategoryID      string
	AreaID          *string
	Closed          bool // its status is closed
	CreatedAt       time.Time
	DispatchedAt    *time.Time
	FirstResponseAt *time.Time
	ResolvedAt      *time.Time
	ClosedAt        *time.Time
	DueAt           *time.Time
	Reopened        bool
	Deferred        bool
	Rating          *int
	RatedAt         *time.Time
}

func factsOf(c *Case) caseFacts {
	return caseFacts{
		DepartmentID: c.DepartmentID, CategoryID: c.CategoryID, AreaID: c.AreaID,
		Closed: c.Status == StatusClosed, CreatedAt: c.CreatedAt,
		DispatchedAt: c.DispatchedAt, FirstResponseAt: c.FirstResponseAt, ResolvedAt: c.ResolvedAt,
		ClosedAt: c.ClosedAt, DueAt: c.DueAt, Reopened: c.Reopened, Deferred: c.Deferred,
		Rating: c.Rating, RatedAt: c.RatedAt,
	}
}

// items calls emit for every figure the case adds to, at the moment it counts: v is the
// count (or the rating, for the sum) of a count, and the hourBucket of an hour value. This
// is the definition of the KPIs; docs/kpis.md says the same in words.
func (f *caseFacts) items(emit func(at time.Time, m measure, v int64)) {
	// received: cases submitted, counted when they were; received_closed: of those, the
	// ones closed now (the numerator of the closure rate).
	emit(f.CreatedAt, mReceived, 1)
	if f.Closed {
		emit(f.CreatedAt, mReceivedClosed, 1)
	}
	// dispatched: cases sent to the department that holds them now (route, dispatch from
	// triage, transfer or reopen: the last of these), counted when they were sent.
	if f.DispatchedAt != nil {
		emit(*f.DispatchedAt, mDispatched, 1)
	}
	// closed: cases closed (confirm, timeout or close); reopened: of those, the ones a
	// reporter reopened at least once (rework); hours to close: from received to closed.
	if f.ClosedAt != nil {
		emit(*f.ClosedAt, mClosed, 1)
		if f.Reopened {
			emit(*f.ClosedAt, mReopened, 1)
		}
		emit(*f.ClosedAt, mHoursToClose, hourBucket(f.ClosedAt.Sub(f.CreatedAt).Hours()))
	}
	// due: cases whose deadline falls then, deferred cases (缓办) left out; closed_on_time:
	// of those, the ones closed now whose work was finished (resolved, or closed straight
	// from work) by the deadline.
	if f.DueAt != nil && !f.Deferred {
		emit(*f.DueAt, mDue, 1)
		finished := f.ResolvedAt
		if finished == nil {
			finished = f.ClosedAt
		}
		if f.Closed && finished != nil && !finished.After(*f.DueAt) {
			emit(*f.DueAt, mClosedOnTime, 1)
		}
	}
	// hours to first response: from received to the first response of staff (accept,
	// reject, resolve or close), counted when it came.
	if f.FirstResponseAt != nil {
		emit(*f.FirstResponseAt, mHoursToFirstResponse, hourBucket(f.FirstResponseAt.Sub(f.CreatedAt).Hours()))
	}
	// ratings and satisfaction: the reporter's rating (1 to 5), counted when it was given.
	if f.Rating != nil && f.RatedAt != nil {
		emit(*f.RatedAt, mRatings, 1)
		emit(*f.RatedAt, mRatingSum, int64(*f.Rating))
	}
}

// key is the case's group in a grouping, "" for none (not yet routed, outside every area).
func (f *caseFacts) key(d statsDim) string {
	var p *string
	switch d {
	case dimDepartment:
		p = f.DepartmentID
	case dimCategory:
		return f.CategoryID
	case dimArea:
		p = f.AreaID
	}
	if p == nil {
		return ""
	}
	return *p
}

func (f *caseFacts) equal(g *caseFacts) bool {
	str := func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	tm := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	num := func(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return str(f.DepartmentID, g.DepartmentID) && f.CategoryID == g.CategoryID && str(f.AreaID, g.AreaID) &&
		f.Closed == g.Closed && f.CreatedAt.Equal(g.CreatedAt) && tm(f.DispatchedAt, g.DispatchedAt) &&
		tm(f.FirstResponseAt, g.FirstResponseAt) && tm(f.ResolvedAt, g.ResolvedAt) && tm(f.ClosedAt, g.ClosedAt) &&
		tm(f.DueAt, g.DueAt) && f.Reopened == g.Reopened && f.Deferred == g.Deferred &&
		num(f.Rating, g.Rating) && tm(f.RatedAt, g.RatedAt)
}

// The hour histograms: values below histSub minutes have a bucket per minute; above, each
// doubling of the value is split into histSub buckets, so a bucket is at most 1/histSub of
// its lower bound wide, and a percentile read from them is within that of the exact one
// (docs/kpis.md). Hours to close run from minutes to a year: a few hundred buckets.
// HoursPrecision is how close a percentile of hours is to the exact one: within this
// fraction of it, or a minute, whichever is more.
const HoursPrecision = 1.0 / histSub

const (
	histSub     = 32
	histMaxExp  = 40
	histBuckets = (histMaxExp + 2) * histSub
)

// hourBucket is the bucket of an hour value; negative values (a clock set back) count as 0.
func hourBucket(h float64) int64 {
	m := h * 60
	if !(m > 0) {
		return 0
	}
	if m < histSub {
		return int64(m)
	}
	frac, exp := math.Frexp(m / histSub) // m/histSub = frac × 2^exp, frac in [0.5, 1)
	e := min(exp-1, histMaxExp)
	q := min(int64(frac*2*histSub), 2*histSub-1)
	if exp-1 > histMaxExp {
		q = 2*histSub - 1
	}
	return int64(e)*histSub + q
}

// bucketHours is the range of hour values [lo, hi) a bucket holds.
func bucketHours(b int64) (lo, hi float64) {
	if b < histSub {
		return float64(b) / 60, float64(b+1) / 60
	}
	e := b/histSub - 1
	q := b - e*histSub
	w := math.Ldexp(1, int(e))
	return float64(q) * w / 60, float64(q+1) * w / 60
}

// hist counts values per bucket, every bucket up to the highest in use: quick to add to,
// for the few histograms a question of the KPIs sums into (a group's, the total's).
type hist []int64

func (h *hist) add(b, n int64) {
	if b < 0 || b >= histBuckets {
		return
	}
	if int(b) >= len(*h) {
		*h = append(*h, make([]int64, int(b)+1-len(*h))...)
	}
	(*h)[b] += n
}

// cellHist counts values per bucket in a cell of the rollup: only the buckets in use, in
// order. A rebuild holds two for every day and group of a city's history (about 100,000 of
// each for a year of a million cases), and a day of one group fills a few dozen buckets,
// where a dense histogram reaching the hours of a case closed after weeks holds some 300
// (the rebuild of the million-case seed peaked at 1.58 GB with dense ones).
type cellHist []histBucket

type histBucket struct {
	b int32
	n int64
}

func (h *cellHist) add(b, n int64) {
	if b < 0 || b >= histBuckets {
		return
	}
	i, found := slices.BinarySearchFunc(*h, int32(b), func(x histBucket, b int32) int { return int(x.b - b) })
	if found {
		(*h)[i].n += n
		return
	}
	*h = slices.Insert(*h, i, histBucket{int32(b), n})
}

// buckets yields the buckets in use, in order.
func (h cellHist) buckets() iter.Seq2[int64, int64] {
	return func(yield func(int64, int64) bool) {
		for _, x := range h {
			if x.n != 0 && !yield(int64(x.b), x.n) {
				return
			}
		}
	}
}

// encodeHist writes the buckets in use as pairs of varints: the gap since the previous
// one, and the count.
func encodeHist(buckets iter.Seq2[int64, int64]) []byte {
	out := []byte{}
	prev := int64(-1)
	for b, n := range buckets {
		out = binary.AppendUvarint(out, uint64(b-prev-1))
		out = binary.AppendVarint(out, n)
		prev = b
	}
	return out
}

// decodeHist passes an encoded histogram's buckets to add.
func decodeHist(p []byte, add func(b, n int64)) error {
	b := int64(-1)
	for len(p) > 0 {
		gap, k := binary.Uvarint(p)
		if k <= 0 {
			return errors.New("corrupt hour histogram")
		}
		p = p[k:]
		n, k := binary.Varint(p)
		if k <= 0 {
			return errors.New("corrupt hour histogram")
		}
		p = p[k:]
		b += int64(gap) + 1
		add(b, n)
	}
	return nil
}

// percentile is PostgreSQL's percentile_cont read from the histogram: the value at fraction
// f of the sorted values, interpolated between the two nearest. Within a bucket its values
// are taken as spread evenly. Nil when there are no values.
func (h hist) percentile(f float64) *float64 {
	var n int64
	for _, c := range h {
		n += c
	}
	if n <= 0 {
		return nil
	}
	// value is the estimate of the value of rank r (0-based) of the sorted values.
	value := func(r int64) float64 {
		var seen int64
		for b, c := range h {
			if c <= 0 {
				continue
			}
			if r < seen+c {
				lo, hi := bucketHours(int64(b))
				return lo + (float64(r-seen)+0.5)/float64(c)*(hi-lo)
			}
			seen += c
		}
		lo, _ := bucketHours(int64(len(h) - 1))
		return lo
	}
	pos := f * float64(n-1)
	lo := math.Floor(pos)
	v := value(int64(lo))
	if int64(lo)+1 < n && pos > lo {
		v += (pos - lo) * (value(int64(lo)+1) - v)
	}
	return &v
}

// statsCell is the sum of the items of one day and group.
type statsCell struct {
	counts [nCounts]int64
	hours  [2]cellHist
}

func (c *statsCell) add(m measure, v, sign int64) {
	if int(m) < nCounts {
		c.counts[m] += v * sign
		return
	}
	c.hours[int(m)-nCounts].add(v, sign)
}

// statsDay is a row of stats_days. Day is the local date as days since 1970-01-01.
type statsDay struct {
	JurisdictionID string `gorm:"primaryKey"`
	Dim            statsDim
	Day            int32  `gorm:"primaryKey"`
	Key            string `gorm:"primaryKey"`
	Received       int64
	ReceivedClosed int64
	Dispatched     int64
	Closed         int64
	Reopened       int64
	Due            int64
	ClosedOnTime   int64
	Ratings        int64
	RatingSum      int64
	CloseHours     []byte
	ResponseHours  []byte
}

func (statsDay) TableName() string { return "stats_days" }

// counts lists the row's counts in measure order.
func (r *statsDay) counts() [nCounts]*int64 {
	return [nCounts]*int64{&r.Received, &r.ReceivedClosed, &r.Dispatched, &r.Closed, &r.Reopened,
		&r.Due, &r.ClosedOnTime, &r.Ratings, &r.RatingSum}
}

// addTo adds the row into a cell.
func (r *statsDay) addTo(c *statsCell) error {
	for i, p := range r.counts() {
		c.counts[i] += *p
	}
	if err := decodeHist(r.CloseHours, c.hours[0].add); err != nil {
		return err
	}
	return decodeHist(r.ResponseHours, c.hours[1].add)
}

// statsChange is a row of stats_changes: a case's facts before (-1) or after (+1) a change.
type statsChange struct {
	ID             int64 `gorm:"primaryKey"`
	JurisdictionID string
	Sign           int16
	Facts          caseFacts `gorm:"embedded"`
}

func (statsChange) TableName() string { return "stats_changes" }

// recordStatsChange writes a case's facts before and after a change (either nil for none),
// in the change's transaction, unless the change left them as they were.
func (db *DB) recordStatsChange(ctx context.Context, jurisdictionID string, before, after *caseFacts) error {
	if before != nil && after != nil && before.equal(after) {
		return nil
	}
	var rows []statsChange
	if before != nil {
		rows = append(rows, statsChange{JurisdictionID: jurisdictionID, Sign: -1, Facts: *before})
	}
	if after != nil {
		rows = append(rows, statsChange{JurisdictionID: jurisdictionID, Sign: 1, Facts: *after})
	}
	if len(rows) == 0 {
		return nil
	}
	return db.q(ctx).Omit("ID").Create(&rows).Error
}

// localDay is the local date of an instant, as days since 1970-01-01.
func localDay(t time.Time, loc *time.Location) int32 {
	y, m, d := t.In(loc).Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// dayDate is the date of a day number, as YYYY-MM-DD.
func dayDate(day int32) string {
	return time.Unix(int64(day)*86400, 0).UTC().Format(time.DateOnly)
}

// dayStart is the instant a local day begins (its first instant when midnight is skipped).
func dayStart(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// cellKey is a day and group of one grouping.
type cellKey struct {
	dim statsDim
	day int32
	key string
}

// addItems adds a case's items, times sign, into cells of every grouping.
func addItems(cells map[cellKey]*statsCell, f *caseFacts, loc *time.Location, sign int64) {
	f.items(func(at time.Time, m measure, v int64) {
		day := localDay(at, loc)
		for _, d := range statsDims {
			k := cellKey{d, day, f.key(d)}
			c := cells[k]
			if c == nil {
				c = &statsCell{}
				cells[k] = c
			}
			c.add(m, v, sign)
		}
	})
}

// statsLock keeps folding and rebuilding one at a time on PostgreSQL (SQLite has only one
// writer anyway).
func (db *DB) statsLock(ctx context.Context) error {
	if db.dialect != Postgres {
		return nil
	}
	return db.q(ctx).Exec("SELECT pg_advisory_xact_lock(?)", int64(0x43455354415453)).Error // "CESTATS"
}

func (db *DB) zone(ctx context.Context, jurisdictionID string) (*Jurisdiction, *time.Location, error) {
	j, err := db.Jurisdiction(ctx, jurisdictionID)
	if err != nil {
		return nil, nil, err
	}
	loc, err := time.LoadLocation(j.Timezone)
	if err != nil {
		return nil, nil, fmt.Errorf("time zone of %s: %w", j.ID, err)
	}
	return j, loc, nil
}

// FoldStats adds up to limit changes not yet folded into the daily rollup and deletes them,
// in one transaction, and says how many it folded. Running it twice, or on two workers at
// once, folds each change once.
func (db *DB) FoldStats(ctx context.Context, limit int) (int, error) {
	var folded int
	err := db.InTx(ctx, func(tx *DB) error {
		folded = 0
		if err := tx.statsLock(ctx); err != nil {
			return err
		}
		var chs []statsChange
		if err := tx.q(ctx).Order("id").Limit(limit).Find(&chs).Error; err != nil {
			return err
		}
		byCity := map[string]map[cellKey]*statsCell{}
		zones := map[string]*time.Location{}
		ids := make([]int64, 0, len(chs))
		for i := range chs {
			ch := &chs[i]
			loc, ok := zones[ch.JurisdictionID]
			if !ok {
				_, z, err := tx.zone(ctx, ch.JurisdictionID)
				if err != nil {
					return err
				}
				loc, zones[ch.JurisdictionID] = z, z
				byCity[ch.JurisdictionID] = map[cellKey]*statsCell{}
			}
			addItems(byCity[ch.JurisdictionID], &ch.Facts, loc, int64(ch.Sign))
			ids = append(ids, ch.ID)
		}
		for city, cells := range byCity {
			if err := tx.mergeStatsCells(ctx, city, cells); err != nil {
				return err
			}
		}
		for part := range slices.Chunk(ids, 1000) {
			if err := tx.q(ctx).Where("id IN ?", part).Delete(&statsChange{}).Error; err != nil {
				return err
			}
		}
		folded = len(ids)
		return nil
	})
	return folded, err
}

// mergeStatsCells adds cells into a city's rows of stats_days.
func (db *DB) mergeStatsCells(ctx context.Context, jurisdictionID string, cells map[cellKey]*statsCell) error {
	days := map[statsDim][]int32{}
	for k := range cells {
		days[k.dim] = append(days[k.dim], k.day)
	}
	var out []statsDay
	for dim, ds := range days {
		slices.Sort(ds)
		ds = slices.Compact(ds)
		have := map[cellKey]*statsDay{}
		for part := range slices.Chunk(ds, 500) {
			var rows []statsDay
			if err := db.q(ctx).Where("jurisdiction_id = ? AND dim = ? AND day IN ?", jurisdictionID, dim, part).Find(&rows).Error; err != nil {
				return err
			}
			for i := range rows {
				have[cellKey{dim, rows[i].Day, rows[i].Key}] = &rows[i]
			}
		}
		for k, c := range cells {
			if k.dim != dim {
				continue
			}
			if r := have[k]; r != nil {
				if err := r.addTo(c); err != nil {
					return err
				}
			}
			out = append(out, c.row(jurisdictionID, k))
		}
	}
	return db.writeStatsDays(ctx, out)
}

// row is the stats_days row of a cell.
func (c *statsCell) row(jurisdictionID string, k cellKey) statsDay {
	r := statsDay{JurisdictionID: jurisdictionID, Dim: k.dim, Day: k.day, Key: k.key,
		CloseHours: encodeHist(c.hours[0].buckets()), ResponseHours: encodeHist(c.hours[1].buckets())}
	for i, p := range r.counts() {
		*p = c.counts[i]
	}
	return r
}

func (db *DB) writeStatsDays(ctx context.Context, rows []statsDay) error {
	if len(rows) == 0 {
		return nil
	}
	return db.q(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "jurisdiction_id"}, {Name: "dim"}, {Name: "day"}, {Name: "key"}},
		UpdateAll: true,
	}).CreateInBatches(rows, 500).Error
}

// rebuildBatch is how many rows of the rollup a rebuild writes at a time.
const rebuildBatch = 5000

// RebuildStats computes a city's rollup again from its cases, in its time zone now: when it
// was never built (a new city, or cases from before the rollup existed) and when the city
// moved to another time zone (its days are local days).
func (db *DB) RebuildStats(ctx context.Context, jurisdictionID string) error {
	return db.InTx(ctx, func(tx *DB) error {
		if tx.dialect == Postgres {
			// The cases read and the changes deleted must be those of one snapshot: a change
			// committed after it stays, to be folded on top of the rows written here. A
			// fold committed meanwhile makes this fail with a serialization error, and
			// InTx runs it again.
			if err := tx.q(ctx).Exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").Error; err != nil {
				return err
			}
		}
		if err := tx.statsLock(ctx); err != nil {
			return err
		}
		j, loc, err := tx.zone(ctx, jurisdictionID)
		if err != nil {
			return err
		}
		for _, table := range []string{"stats_days", "stats_changes"} {
			if err := tx.q(ctx).Exec("DELETE FROM "+table+" WHERE jurisdiction_id = ?", j.ID).Error; err != nil {
				return err
			}
		}
		cells := map[cellKey]*statsCell{}
		if err := tx.scanFacts(ctx, "c.jurisdiction_id = ?", []any{j.ID}, func(f *caseFacts) {
			addItems(cells, f, loc, 1)
		}); err != nil {
			return err
		}
		// Written a few thousand rows at a time, each cell let go once it is a row.
		rows := make([]statsDay, 0, rebuildBatch)
		for k, c := range cells {
			rows = append(rows, c.row(j.ID, k))
			delete(cells, k)
			if len(rows) == rebuildBatch || len(cells) == 0 {
				if err := tx.writeStatsDays(ctx, rows); err != nil {
					return err
				}
				rows = rows[:0]
			}
		}
		return tx.q(ctx).Exec("INSERT INTO stats_built (jurisdiction_id, timezone, built_at) VALUES (?, ?, ?)"+
			" ON CONFLICT (jurisdiction_id) DO UPDATE SET timezone = excluded.timezone, built_at = excluded.built_at",
			j.ID, j.Timezone, time.Now().UTC()).Error
	})
}

// statsBuilt tells whether a city's rollup is built, in its time zone now.
func (db *DB) statsBuilt(ctx context.Context, j *Jurisdiction) (bool, error) {
	var zones []string
	if err := db.q(ctx).Raw("SELECT timezone FROM stats_built WHERE jurisdiction_id = ?", j.ID).Scan(&zones).Error; err != nil {
		return false, translate(err)
	}
	return len(zones) == 1 && zones[0] == j.Timezone, nil
}

// StatsPending counts the case changes not yet folded into the KPI rollup.
func (db *DB) StatsPending(ctx context.Context) (int64, error) {
	var n int64
	err := db.q(ctx).Model(&statsChange{}).Count(&n).Error
	return n, translate(err)
}

// StatsUnbuilt lists the cities whose rollup is not built in their time zone now.
func (db *DB) StatsUnbuilt(ctx context.Context) ([]string, error) {
	var ids []string
	err := db.q(ctx).Raw("SELECT j.id FROM jurisdictions j LEFT JOIN stats_built b ON b.jurisdiction_id = j.id" +
		" WHERE b.jurisdiction_id IS NULL OR b.timezone <> j.timezone ORDER BY j.id").Scan(&ids).Error
	return ids, translate(err)
}

// factsColumns are the columns of cases a caseFacts is read from, in scanFacts' order.
const factsColumns = "c.department_id, c.category_id, c.area_id, CASE WHEN c.status = 'closed' THEN 1 ELSE 0 END," +
	" c.created_at, c.dispatched_at, c.first_response_at, c.resolved_at, c.closed_at, c.due_at," +
	" c.reopened, c.deferred, c.rating, c.rated_at"

// scanFacts reads the facts of the cases (aliased c) that satisfy where, one at a time.
func (db *DB) scanFacts(ctx context.Context, where string, args []any, fn func(*caseFacts)) error {
	rows, err := db.q(ctx).Raw("SELECT "+factsColumns+" FROM cases c WHERE "+where, args...).Rows()
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	var (
		f                      caseFacts
		dept, area             sql.NullString
		closed                 int
		disp, resp, res, cl, d sql.NullTime
		rating                 sql.NullInt64
		rated                  sql.NullTime
	)
	tp := func(t sql.NullTime) *time.Time {
		if !t.Valid {
			return nil
		}
		u := t.Time.UTC()
		return &u
	}
	sp := func(s sql.NullString) *string {
		if !s.Valid {
			return nil
		}
		return &s.String
	}
	for rows.Next() {
		if err := rows.Scan(&dept, &f.CategoryID, &area, &closed, &f.CreatedAt, &disp, &resp, &res, &cl, &d,
			&f.Reopened, &f.Deferred, &rating, &rated); err != nil {
			return translate(err)
		}
		f.DepartmentID, f.AreaID, f.Closed = sp(dept), sp(area), closed == 1
		f.CreatedAt = f.CreatedAt.UTC()
		f.DispatchedAt, f.FirstResponseAt, f.ResolvedAt, f.ClosedAt, f.DueAt = tp(disp), tp(resp), tp(res), tp(cl), tp(d)
		f.Rating, f.RatedAt = nil, tp(rated)
		if rating.Valid {
			r := int(rating.Int64)
			f.Rating = &r
		}
		fn(&f)
	}
	return translate(rows.Err())
}
