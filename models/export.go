package models

import (
	"context"
	"database/sql"
	"strings"
	"time"
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

// ExportRow is one case of an export, with the codes of what it refers to.
type ExportRow struct {
	ID, Number, Status, Resolution string
	Category                       string
	Department, Area               sql.NullString
	Priority                       int
	Description, Address           string
	Lat, Lon                       float64
	CreatedAt                      time.Time
	DispatchedAt, FirstResponseAt  sql.NullTime
	ResolvedAt, ClosedAt, DueAt    sql.NullTime
	Supporters                     int
	ReporterName, ReporterEmail    sql.NullString
	ReporterPhone                  sql.NullString
}

// ExportCursor reads an export's cases one at a time from the database's cursor, so memory
// stays flat however many there are. It holds a connection until closed.
type ExportCursor struct {
	rows    *sql.Rows
	contact bool
	row     ExportRow
	err     error
}

// ExportCases opens a cursor over the cases of the filter, oldest first.
func (db *DB) ExportCases(ctx context.Context, f ExportFilter) (*ExportCursor, error) {
	cols := "c.id, c.number, c.status, c.resolution, cat.code, d.code, a.code, c.priority, c.description, c.address, " +
		"c.lat, c.lon, c.created_at, c.dispatched_at, c.first_response_at, c.resolved_at, c.closed_at, c.due_at, c.supporters"
	from := "cases c JOIN categories cat ON cat.id = c.category_id LEFT JOIN departments d ON d.id = c.department_id " +
		"LEFT JOIN areas a ON a.id = c.area_id"
	if f.Contact {
		// A reporter's contact is what an Open311 client passed on, else their account's.
		cols += ", COALESCE(NULLIF(TRIM(oc.first_name || ' ' || oc.last_name), ''), NULLIF(u.name, '')), COALESCE(oc.email, u.email), NULLIF(oc.phone, '')"
		from += " JOIN users u ON u.id = c.reporter_id LEFT JOIN open311_contacts oc ON oc.user_id = c.reporter_id"
	}
	where := []string{"c.jurisdiction_id = ?"}
	args := []any{f.JurisdictionID}
	if f.From != nil {
		where, args = append(where, "c.created_at >= ?"), append(args, f.From.UTC())
	}
	if f.To != nil {
		where, args = append(where, "c.created_at < ?"), append(args, f.To.UTC())
	}
	if len(f.Statuses) > 0 {
		where, args = append(where, "c.status IN ?"), append(args, f.Statuses)
	}
	for _, x := range []struct{ col, v string }{{"c.department_id", f.DepartmentID}, {"c.category_id", f.CategoryID}, {"c.area_id", f.AreaID}} {
		if x.v != "" {
			where, args = append(where, x.col+" = ?"), append(args, x.v)
		}
	}
	rows, err := db.q(ctx).Raw("SELECT "+cols+" FROM "+from+" WHERE "+strings.Join(where, " AND ")+
		" ORDER BY c.created_at, c.id", args...).Rows()
	if err != nil {
		return nil, translate(err)
	}
	return &ExportCursor{rows: rows, contact: f.Contact}, nil
}

// Next reads the next case; false at the end or on an error (Err says which).
func (c *ExportCursor) Next() bool {
	if c.err != nil || !c.rows.Next() {
		return false
	}
	r := &c.row
	*r = ExportRow{}
	dest := []any{&r.ID, &r.Number, &r.Status, &r.Resolution, &r.Category, &r.Department, &r.Area, &r.Priority,
		&r.Description, &r.Address, &r.Lat, &r.Lon, &r.CreatedAt, &r.DispatchedAt, &r.FirstResponseAt,
		&r.ResolvedAt, &r.ClosedAt, &r.DueAt, &r.Supporters}
	if c.contact {
		dest = append(dest, &r.ReporterName, &r.ReporterEmail, &r.ReporterPhone)
	}
	if err := c.rows.Scan(dest...); err != nil {
		c.err = translate(err)
		return false
	}
	return true
}

// Row is the case Next read; it is overwritten by the next call.
func (c *ExportCursor) Row() *ExportRow { return &c.row }

// Err is what stopped the cursor early, if anything.
func (c *ExportCursor) Err() error {
	if c.err != nil {
		return c.err
	}
	return translate(c.rows.Err())
}

// Close gives the connection back.
func (c *ExportCursor) Close() error { return c.rows.Close() }
