package api

import (
	"bufio"
	"context"
	"database/sql/driver"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// exportTimeout bounds how long one export may hold a database connection.
const exportTimeout = 10 * time.Minute

// exportFilter reads an export's filters: from and to (when received; optional, and
// unbounded since an export streams), status (comma-separated; "open" is every status but
// closed), department, category and area (codes), and include=contact for the reporters'
// contact details, which only supervisors may ask for.
func (s *Server) exportFilter(c *fiber.Ctx) (models.ExportFilter, error) {
	ctx := c.UserContext()
	j, loc, err := s.statsCity(c)
	if err != nil {
		return models.ExportFilter{}, err
	}
	f := models.ExportFilter{JurisdictionID: j.ID}
	if c.Query("from") != "" || c.Query("to") != "" {
		from, to, err := s.exportPeriod(c, loc)
		if err != nil {
			return f, err
		}
		f.From, f.To = from, to
	}
	if st := c.Query("status"); st != "" {
		for _, v := range strings.Split(st, ",") {
			switch status := models.Status(strings.TrimSpace(v)); status {
			case "open":
				f.Statuses = append(f.Statuses, models.StatusSubmitted, models.StatusDispatched, models.StatusTriage,
					models.StatusAccepted, models.StatusInProgress, models.StatusResolved)
			case models.StatusSubmitted, models.StatusDispatched, models.StatusTriage, models.StatusAccepted,
				models.StatusInProgress, models.StatusResolved, models.StatusClosed:
				f.Statuses = append(f.Statuses, status)
			default:
				return f, models.Problemf(models.ErrInvalid, "invalid-status",
					"status %q is not open or one of submitted, dispatched, triage, accepted, in_progress, resolved, closed", v)
			}
		}
	}
	if code := c.Query("department"); code != "" {
		d, err := s.db.DepartmentByCode(ctx, j.ID, code)
		if err != nil {
			return f, models.Problemf(models.ErrInvalid, "unknown-department", "no department %q in your city", code)
		}
		f.DepartmentID = d.ID
	}
	if f.CategoryID, f.AreaID, err = s.placeFilters(ctx, c, j.ID); err != nil {
		return f, err
	}
	switch inc := c.Query("include"); inc {
	case "":
	case "contact":
		// Reporters' contact details are for the supervisors who answer to them, and only
		// when asked for: an export is a file that travels, so by default it carries none.
		if caller(c).Role != models.RoleSupervisor {
			return f, models.Problemf(models.ErrForbidden, "personal-data-forbidden",
				"reporters' contact details are exported for supervisors only; leave out include=contact")
		}
		f.Contact = true
	default:
		return f, models.Problemf(models.ErrInvalid, "invalid-include", "include may only be contact, not %q", inc)
	}
	return f, nil
}

// exportPeriod reads from and to like the KPIs' period, either alone, and unbounded.
func (s *Server) exportPeriod(c *fiber.Ctx, loc *time.Location) (*time.Time, *time.Time, error) {
	var out [2]*time.Time
	for i, name := range []string{"from", "to"} {
		v := c.Query(name)
		if v == "" {
			continue
		}
		t, err := parseWhen(name, v, loc, i == 1)
		if err != nil {
			return nil, nil, err
		}
		out[i] = &t
	}
	if out[0] != nil && out[1] != nil && !out[0].Before(*out[1]) {
		return nil, nil, models.Problemf(models.ErrInvalid, "invalid-period", "from (%s) must be before to (%s)",
			out[0].Format(time.RFC3339), out[1].Format(time.RFC3339))
	}
	return out[0], out[1], nil
}

// exportColumns are the CSV header and the GeoJSON properties, in order.
var exportColumns = []string{"id", "number", "status", "resolution", "category", "department", "area", "priority",
	"description", "address", "lat", "lon", "created_at", "dispatched_at", "first_response_at", "resolved_at",
	"closed_at", "due_at", "supporters"}

var contactColumns = []string{"reporter_name", "reporter_email", "reporter_phone"}

// utf8BOM starts the CSV so that Excel reads it as UTF-8 (without it, Excel on Windows reads
// a CSV in the machine's legacy code page and garbles every accent and every Chinese
// character); LibreOffice, QGIS and pandas ("utf-8-sig") take it in their stride.
const utf8BOM = "\ufeff"

// safeCell neutralises formula injection: a spreadsheet runs a cell starting with =, +, -
// or @ (and some a tab or carriage return before one) as a formula, so such text is
// prefixed with an apostrophe, which shows it as text. Only text that came from people
// passes through here; the numbers and times we write ourselves cannot start a formula.
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func nullText(v driver.Valuer) string {
	x, _ := v.Value()
	switch t := x.(type) {
	case string:
		return t
	case time.Time:
		return t.UTC().Format(time.RFC3339)
	}
	return ""
}

func floatText(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// exportCSV streams the city's cases as CSV (GET /v1/exports/cases.csv), one row per case,
// oldest first, read from a database cursor as the client takes them.
func (s *Server) exportCSV(c *fiber.Ctx) error {
	f, err := s.exportFilter(c)
	if err != nil {
		return err
	}
	return s.streamExport(c, f, "text/csv; charset=utf-8", "cases.csv", func(w *bufio.Writer, cur *models.ExportCursor) error {
		cw := csv.NewWriter(w)
		cw.UseCRLF = true // RFC 4180, and what Excel writes
		if _, err := w.WriteString(utf8BOM); err != nil {
			return err
		}
		header := exportColumns
		if f.Contact {
			header = append(header[:len(header):len(header)], contactColumns...)
		}
		if err := cw.Write(header); err != nil {
			return err
		}
		rec := make([]string, len(header))
		for n := 1; cur.Next(); n++ {
			r := cur.Row()
			rec = append(rec[:0], r.ID, r.Number, r.Status, r.Resolution, r.Category, nullText(r.Department), nullText(r.Area),
				strconv.Itoa(r.Priority), safeCell(r.Description), safeCell(r.Address), floatText(r.Lat), floatText(r.Lon),
				r.CreatedAt.UTC().Format(time.RFC3339), nullText(r.DispatchedAt), nullText(r.FirstResponseAt),
				nullText(r.ResolvedAt), nullText(r.ClosedAt), nullText(r.DueAt), strconv.Itoa(r.Supporters))
			if f.Contact {
				rec = append(rec, safeCell(nullText(r.ReporterName)), safeCell(nullText(r.ReporterEmail)), safeCell(nullText(r.ReporterPhone)))
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
			if n%1000 == 0 {
				// Send what is ready as a chunk, so the client sees the rows coming.
				cw.Flush()
				if err := w.Flush(); err != nil {
					return err
				}
			}
		}
		if err := cur.Err(); err != nil {
			// The rows so far are out; a last line says the file is incomplete.
			_ = cw.Write([]string{"error: the export stopped early; run it again"})
			cw.Flush()
			return err
		}
		cw.Flush()
		return cw.Error()
	})
}

// geoFeature is one case as a GeoJSON feature.
type geoFeature struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Geometry   geoPoint       `json:"geometry"`
	Properties map[string]any `json:"properties"`
}

type geoPoint struct {
	Type        string     `json:"type"`
	Coordinates [2]float64 `json:"coordinates"`
}

// exportGeoJSON streams the city's cases as a GeoJSON FeatureCollection of points
// (GET /v1/exports/cases.geojson), in WGS 84 longitude, latitude order.
func (s *Server) exportGeoJSON(c *fiber.Ctx) error {
	f, err := s.exportFilter(c)
	if err != nil {
		return err
	}
	return s.streamExport(c, f, "application/geo+json", "cases.geojson", func(w *bufio.Writer, cur *models.ExportCursor) error {
		if _, err := w.WriteString(`{"type":"FeatureCollection","features":[`); err != nil {
			return err
		}
		enc := json.NewEncoder(w)
		props := map[string]any{}
		opt := func(v driver.Valuer) any {
			if t := nullText(v); t != "" {
				return t
			}
			return nil
		}
		for n := 0; cur.Next(); n++ {
			r := cur.Row()
			if n > 0 {
				if err := w.WriteByte(','); err != nil {
					return err
				}
			}
			props["number"], props["status"], props["resolution"], props["category"] = r.Number, r.Status, r.Resolution, r.Category
			props["department"], props["area"], props["priority"] = opt(r.Department), opt(r.Area), r.Priority
			props["description"], props["address"] = r.Description, r.Address
			props["created_at"] = r.CreatedAt.UTC().Format(time.RFC3339)
			props["dispatched_at"], props["first_response_at"] = opt(r.DispatchedAt), opt(r.FirstResponseAt)
			props["resolved_at"], props["closed_at"], props["due_at"] = opt(r.ResolvedAt), opt(r.ClosedAt), opt(r.DueAt)
			props["supporters"] = r.Supporters
			if f.Contact {
				props["reporter_name"], props["reporter_email"], props["reporter_phone"] = opt(r.ReporterName), opt(r.ReporterEmail), opt(r.ReporterPhone)
			}
			if err := enc.Encode(geoFeature{Type: "Feature", ID: r.ID, Geometry: geoPoint{Type: "Point", Coordinates: [2]float64{r.Lon, r.Lat}}, Properties: props}); err != nil {
				return err
			}
			if n%1000 == 999 {
				if err := w.Flush(); err != nil {
					return err
				}
			}
		}
		if err := cur.Err(); err != nil {
			return err // without its closing brackets, the file does not parse: no silent truncation
		}
		_, err := w.WriteString("]}\n")
		return err
	})
}

// streamExport opens the export's cursor before answering (so that a failing query is still
// a problem+json), then streams the body from it: the response is written while the rows are
// read, a chunk at a time, and neither is ever held whole.
func (s *Server) streamExport(c *fiber.Ctx, f models.ExportFilter, ctype, name string, write func(*bufio.Writer, *models.ExportCursor) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	cur, err := s.db.ExportCases(ctx, f)
	if err != nil {
		cancel()
		return err
	}
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		defer cur.Close()
		if err := write(w, cur); err != nil {
			s.log.Warn("export stopped", "file", name, "err", err)
		}
		_ = w.Flush()
	})
	return nil
}
