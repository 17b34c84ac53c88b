package models

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// ExportFilter selects the cases of an export. Every field but the city is optional: an
// export is streamed, so it needs no bound on its size.
type ExportFilter struct {
	JurisdictionID string
	From, To       *time.Time // received in [From, To)
	Statuses       []Status   // any of these
	DepartmentID   string
	CategoryID     string
	AreaID         string
	// Contact adds the reporter's name, email and phone (personal data).
	Contact bool
}

// ExportRow is one case of an export, with the codes of what it refers to. Its text is
// the cursor's own buffers, valid only until the next row: an export of a million cases
// then allocates nothing per case. An empty Department, Area or reporter field is one the
// case does not have.
type ExportRow struct {
	ID, Number, Status, Resolution             []byte
	Category, Department, Area                 []byte
	Priority                                   int
	Description, Address                       []byte
	Lat, Lon                                   float64
	CreatedAt                                  time.Time
	DispatchedAt, FirstResponseAt              sql.NullTime
	ResolvedAt, ClosedAt, DueAt                sql.NullTime
	Supporters                                 int
	ReporterName, ReporterEmail, ReporterPhone []byte
}

// ExportCursor reads an export's cases one at a time from a database cursor, so memory
// stays flat however many there are. It holds a connection until closed.
type ExportCursor struct {
	db   *DB
	ctx  context.Context // the export's own deadline, for the connection it holds
	conn *sql.Conn
	f    ExportFilter
}

// ExportCases takes a connection for an export of the filter's cases, which Each then
// reads oldest first. Taking it here lets a caller report an unavailable database before
// it starts answering.
func (db *DB) ExportCases(ctx context.Context, f ExportFilter) (*ExportCursor, error) {
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("database: %w: %v", ErrUnavailable, err)
	}
	if err := conn.PingContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("database: %w: %v", ErrUnavailable, err)
	}
	return &ExportCursor{db: db, ctx: ctx, conn: conn, f: f}, nil
}

// Close gives the connection back.
func (c *ExportCursor) Close() error { return c.conn.Close() }

// Each calls fn with every case of the export, oldest first, and stops at the first error
// fn returns, which it returns as is; any other error is the database's. The row is
// overwritten by the next one.
func (c *ExportCursor) Each(fn func(*ExportRow) error) error {
	if c.db.dialect == Postgres {
		return c.eachPostgres(fn)
	}
	return c.eachSQL(fn)
}

// exportColumns are the case's own columns of an export, in ExportRow's order; the codes
// come between status/resolution and priority.
const exportCaseColumns = "c.priority, c.description, c.address, c.lat, c.lon, c.created_at, " +
	"c.dispatched_at, c.first_response_at, c.resolved_at, c.closed_at, c.due_at, c.supporters"

// A reporter's contact is what an Open311 client passed on, else their account's.
const (
	exportContactColumns = ", COALESCE(NULLIF(TRIM(oc.first_name || ' ' || oc.last_name), ''), NULLIF(u.name, '')), " +
		"COALESCE(oc.email, u.email), NULLIF(oc.phone, '')"
	exportContactJoins = " JOIN users u ON u.id = c.reporter_id LEFT JOIN open311_contacts oc ON oc.user_id = c.reporter_id"
)

// where is the filter as SQL, with placeholders made by ph for the n-th argument.
func (f ExportFilter) where(ph func(n int) string) (string, []any) {
	args := []any{f.JurisdictionID}
	add := func(cond string, v any) string {
		args = append(args, v)
		return strings.Replace(cond, "?", ph(len(args)), 1)
	}
	where := []string{"c.jurisdiction_id = " + ph(1)}
	if f.From != nil {
		where = append(where, add("c.created_at >= ?", f.From.UTC()))
	}
	if f.To != nil {
		where = append(where, add("c.created_at < ?", f.To.UTC()))
	}
	if len(f.Statuses) > 0 {
		// One placeholder per status: the same SQL on both databases, no array types.
		in := make([]string, len(f.Statuses))
		for i, s := range f.Statuses {
			in[i] = add("?", string(s))
		}
		where = append(where, "c.status IN ("+strings.Join(in, ", ")+")")
	}
	for _, x := range []struct{ col, v string }{{"c.department_id", f.DepartmentID}, {"c.category_id", f.CategoryID}, {"c.area_id", f.AreaID}} {
		if x.v != "" {
			where = append(where, add(x.col+" = ?", x.v))
		}
	}
	return strings.Join(where, " AND "), args
}

// eachSQL reads the export through database/sql, joining the codes (SQLite: its joins are
// cheap in process, and a snapshot across queries would take its write lock).
func (c *ExportCursor) eachSQL(fn func(*ExportRow) error) error {
	cols := "c.id, c.number, c.status, c.resolution, cat.code, d.code, a.code, " + exportCaseColumns
	from := "cases c JOIN categories cat ON cat.id = c.category_id LEFT JOIN departments d ON d.id = c.department_id " +
		"LEFT JOIN areas a ON a.id = c.area_id"
	if c.f.Contact {
		cols += exportContactColumns
		from += exportContactJoins
	}
	where, args := c.f.where(func(int) string { return "?" })
	rows, err := c.conn.QueryContext(c.ctx, "SELECT "+cols+" FROM "+from+" WHERE "+where+" ORDER BY c.created_at, c.id", args...)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	var r ExportRow
	// RawBytes reuses its buffer from row to row.
	raw := func(b *[]byte) *sql.RawBytes { return (*sql.RawBytes)(b) }
	dest := []any{raw(&r.ID), raw(&r.Number), raw(&r.Status), raw(&r.Resolution), raw(&r.Category), raw(&r.Department),
		raw(&r.Area), &r.Priority, raw(&r.Description), raw(&r.Address), &r.Lat, &r.Lon, &r.CreatedAt, &r.DispatchedAt,
		&r.FirstResponseAt, &r.ResolvedAt, &r.ClosedAt, &r.DueAt, &r.Supporters}
	if c.f.Contact {
		dest = append(dest, raw(&r.ReporterName), raw(&r.ReporterEmail), raw(&r.ReporterPhone))
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return translate(err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return translate(rows.Err())
}

// eachPostgres reads the export with pgx itself, under the connection database/sql lent:
// its rows are decoded in place (no value boxed, no string made per column), and the
// departments', categories' and areas' codes come from maps read once in the same
// snapshot instead of three lookups per case.
func (c *ExportCursor) eachPostgres(fn func(*ExportRow) error) error {
	var fnErr error
	each := func(r *ExportRow) error {
		fnErr = fn(r)
		return fnErr
	}
	err := c.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("export: the PostgreSQL driver's connection is a %T, not pgx's", dc)
		}
		return exportPgx(c.ctx, sc.Conn(), c.f, each)
	})
	if fnErr != nil {
		return fnErr
	}
	return translate(err)
}

func exportPgx(ctx context.Context, conn *pgx.Conn, f ExportFilter, fn func(*ExportRow) error) error {
	// Stopping early (the client went away) cancels the query rather than reading the rest
	// of a million rows to the end; the connection is then dropped from the pool.
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One read-only snapshot for the codes and the cases: a category added meanwhile is in
	// both or in neither.
	tx, err := conn.BeginTx(qctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = tx.Rollback(rctx) // it only read
	}()
	codes := map[[16]byte][]byte{}
	for _, table := range []string{"categories", "departments", "areas"} {
		// Every city's: a few thousand short rows at most, and a case's codes are found
		// whatever city they belong to.
		rows, err := tx.Query(qctx, "SELECT id, code FROM "+table)
		if err != nil {
			return err
		}
		var id pgtype.UUID
		var code string
		if _, err := pgx.ForEachRow(rows, []any{&id, &code}, func() error {
			codes[id.Bytes] = []byte(code)
			return nil
		}); err != nil {
			return err
		}
	}
	sel := "SELECT c.id, c.number, c.status, c.resolution, c.category_id, c.department_id, c.area_id, " + exportCaseColumns
	from := " FROM cases c"
	if f.Contact {
		sel += exportContactColumns
		from += exportContactJoins
	}
	where, args := f.where(func(n int) string { return "$" + strconv.Itoa(n) })
	rows, err := tx.Query(qctx, sel+from+" WHERE "+where+" ORDER BY c.created_at, c.id", args...)
	if err != nil {
		return err
	}
	defer rows.Close()

	var (
		r                                            ExportRow
		id, cat, dept, area                          pgtype.UUID
		priority, supporters                         int32
		dispatched, responded, resolved, closed, due pgtype.Timestamptz
		idText                                       [36]byte
	)
	// Text columns (nil here) are read from the wire as they are: text's binary format is
	// its UTF-8.
	dest := []any{&id, nil, nil, nil, &cat, &dept, &area, &priority, nil, nil, &r.Lat, &r.Lon, &r.CreatedAt,
		&dispatched, &responded, &resolved, &closed, &due, &supporters}
	if f.Contact {
		dest = append(dest, nil, nil, nil)
	}
	nullTime := func(t pgtype.Timestamptz) sql.NullTime { return sql.NullTime{Time: t.Time, Valid: t.Valid} }
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		raw := rows.RawValues()
		r.ID = appendUUID(idText[:0], id.Bytes)
		r.Number, r.Status, r.Resolution = raw[1], raw[2], raw[3]
		r.Category, r.Department, r.Area = codes[cat.Bytes], nil, nil
		if dept.Valid {
			r.Department = codes[dept.Bytes]
		}
		if area.Valid {
			r.Area = codes[area.Bytes]
		}
		r.Priority, r.Supporters = int(priority), int(supporters)
		r.Description, r.Address = raw[8], raw[9]
		r.DispatchedAt, r.FirstResponseAt, r.ResolvedAt = nullTime(dispatched), nullTime(responded), nullTime(resolved)
		r.ClosedAt, r.DueAt = nullTime(closed), nullTime(due)
		if f.Contact {
			r.ReporterName, r.ReporterEmail, r.ReporterPhone = raw[19], raw[20], raw[21]
		}
		if err := fn(&r); err != nil {
			cancel()
			return err
		}
	}
	return rows.Err()
}

// appendUUID writes a UUID in its canonical text form.
func appendUUID(b []byte, u [16]byte) []byte {
	const hex = "0123456789abcdef"
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[x>>4], hex[x&15])
	}
	return b
}
