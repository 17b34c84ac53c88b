package api

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// exportChunk is how much of an export is gathered before it is handed to the connection
// as one chunk: large enough that the per-chunk costs (a flush, a wake-up of the writer)
// vanish, small enough that the client sees rows coming and memory stays flat.
const exportChunk = 64 << 10

// formulaStart tells whether text would start a formula: a spreadsheet runs a cell starting
// with =, +, - or @ (and some a tab or carriage return before one) as one. Such text is
// written with an apostrophe before it, which shows it as text. Only text that came from
// people is checked; the numbers and times we write ourselves cannot start a formula.
func formulaStart(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// appendCSVField appends one CSV field exactly as encoding/csv's Writer with UseCRLF writes
// it (quoted when it holds a comma, a quote, a line break, or starts with a space or is
// \.; quotes doubled; a line break as CRLF, a lone carriage return dropped), with an
// apostrophe first when safe is set and the text would start a formula.
func appendCSVField(b, s []byte, safe bool) []byte {
	apostrophe := safe && formulaStart(s)
	if !csvNeedsQuotes(s, apostrophe) {
		if apostrophe {
			b = append(b, '\'')
		}
		return append(b, s...)
	}
	b = append(b, '"')
	if apostrophe {
		b = append(b, '\'')
	}
	for len(s) > 0 {
		i := bytes.IndexAny(s, "\"\r\n")
		if i < 0 {
			b = append(b, s...)
			break
		}
		b = append(b, s[:i]...)
		switch s[i] {
		case '"':
			b = append(b, '"', '"')
		case '\n':
			b = append(b, '\r', '\n')
		}
		s = s[i+1:]
	}
	return append(b, '"')
}

// csvNeedsQuotes is encoding/csv's rule, for s written after an apostrophe or not.
func csvNeedsQuotes(s []byte, apostrophe bool) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if c == ',' || c == '"' || c == '\r' || c == '\n' {
			return true
		}
	}
	if apostrophe {
		return false // the field starts with the apostrophe
	}
	if len(s) == 2 && s[0] == '\\' && s[1] == '.' {
		return true
	}
	if s[0] < utf8.RuneSelf {
		return s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\v' || s[0] == '\f' || s[0] == '\r'
	}
	r, _ := utf8.DecodeRune(s)
	return unicode.IsSpace(r)
}

// appendTime appends an export's time: RFC 3339 in UTC, or nothing when there is none.
func appendTime(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, time.RFC3339) }

func appendNullTime(b []byte, t sql.NullTime) []byte {
	if !t.Valid {
		return b
	}
	return appendTime(b, t.Time)
}

// appendCSVRow appends one case as a CSV record, in exportColumns' order.
func appendCSVRow(b []byte, r *models.ExportRow, contact bool) []byte {
	for _, s := range [...][]byte{r.ID, r.Number, r.Status, r.Resolution, r.Category, r.Department, r.Area} {
		b = appendCSVField(b, s, false)
		b = append(b, ',')
	}
	b = strconv.AppendInt(b, int64(r.Priority), 10)
	b = append(b, ',')
	b = appendCSVField(b, r.Description, true)
	b = append(b, ',')
	b = appendCSVField(b, r.Address, true)
	b = append(b, ',')
	b = strconv.AppendFloat(b, r.Lat, 'f', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, r.Lon, 'f', -1, 64)
	b = append(b, ',')
	b = appendTime(b, r.CreatedAt)
	for _, t := range [...]sql.NullTime{r.DispatchedAt, r.FirstResponseAt, r.ResolvedAt, r.ClosedAt, r.DueAt} {
		b = append(b, ',')
		b = appendNullTime(b, t)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Supporters), 10)
	if contact {
		for _, s := range [...][]byte{r.ReporterName, r.ReporterEmail, r.ReporterPhone} {
			b = append(b, ',')
			b = appendCSVField(b, s, true)
		}
	}
	return append(b, '\r', '\n') // RFC 4180, and what Excel writes
}

// writeCSV writes the export's CSV: the byte-order mark, the header, a record per case.
// Records are gathered in one reused buffer and handed on a chunk at a time, so a row
// costs no allocation and no call through an interface.
func writeCSV(w io.Writer, cur *models.ExportCursor, contact bool) error {
	header := exportColumns
	if contact {
		header = append(header[:len(header):len(header)], contactColumns...)
	}
	buf := make([]byte, 0, exportChunk+4096)
	buf = append(buf, utf8BOM...)
	for i, h := range header {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, h...)
	}
	buf = append(buf, '\r', '\n')
	var werr error
	err := cur.Each(func(r *models.ExportRow) error {
		buf = appendCSVRow(buf, r, contact)
		if len(buf) >= exportChunk {
			if werr = writeChunk(w, buf); werr != nil {
				return werr
			}
			buf = buf[:0]
		}
		return nil
	})
	if err != nil && werr == nil {
		// The rows so far are out; a last line says the file is incomplete.
		buf = append(buf, "error: the export stopped early; run it again\r\n"...)
		_ = writeChunk(w, buf)
		return err
	}
	if err != nil {
		return err
	}
	return writeChunk(w, buf)
}

// writeChunk writes b and, when w buffers, sends it on at once.
func writeChunk(w io.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return err
	}
	if f, ok := w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// exportCSV streams the city's cases as CSV (GET /v1/exports/cases.csv), one row per case,
// oldest first, read from a database cursor as the client takes them.
func (s *Server) exportCSV(c *fiber.Ctx) error {
	f, err := s.exportFilter(c)
	if err != nil {
		return err
	}
	return s.streamExport(c, f, "text/csv; charset=utf-8", "cases.csv", func(w *bufio.Writer, cur *models.ExportCursor) error {
		return writeCSV(w, cur, f.Contact)
	})
}

// appendJSONString appends s as a JSON string, escaped as encoding/json escapes it (less
// its HTML escaping, which a file needs not): quotes, backslashes and control characters,
// U+2028 and U+2029, and invalid UTF-8 as U+FFFD.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONFloat appends f as encoding/json writes a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendGeoFeature appends one case as a GeoJSON Feature: a point in WGS 84 longitude,
// latitude order, its figures as properties, and null for what it does not have.
func appendGeoFeature(b []byte, r *models.ExportRow, contact bool) []byte {
	b = append(b, `{"type":"Feature","id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"geometry":{"type":"Point","coordinates":[`...)
	b = appendJSONFloat(b, r.Lon)
	b = append(b, ',')
	b = appendJSONFloat(b, r.Lat)
	b = append(b, `]},"properties":{`...)
	text := func(b []byte, name string, s []byte, nullable bool) []byte {
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		if nullable && len(s) == 0 {
			return append(b, "null"...)
		}
		return appendJSONString(b, s)
	}
	when := func(b []byte, name string, t sql.NullTime) []byte {
		b = append(b, ",\""...)
		b = append(b, name...)
		b = append(b, '"', ':')
		if !t.Valid {
			return append(b, "null"...)
		}
		b = append(b, '"')
		b = appendTime(b, t.Time)
		return append(b, '"')
	}
	b = text(b, "number", r.Number, false)
	b = text(append(b, ','), "status", r.Status, false)
	b = text(append(b, ','), "resolution", r.Resolution, false)
	b = text(append(b, ','), "category", r.Category, false)
	b = text(append(b, ','), "department", r.Department, true)
	b = text(append(b, ','), "area", r.Area, true)
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(r.Priority), 10)
	b = text(append(b, ','), "description", r.Description, false)
	b = text(append(b, ','), "address", r.Address, false)
	b = append(b, `,"created_at":"`...)
	b = appendTime(b, r.CreatedAt)
	b = append(b, '"')
	b = when(b, "dispatched_at", r.DispatchedAt)
	b = when(b, "first_response_at", r.FirstResponseAt)
	b = when(b, "resolved_at", r.ResolvedAt)
	b = when(b, "closed_at", r.ClosedAt)
	b = when(b, "due_at", r.DueAt)
	b = append(b, `,"supporters":`...)
	b = strconv.AppendInt(b, int64(r.Supporters), 10)
	if contact {
		b = text(append(b, ','), "reporter_name", r.ReporterName, true)
		b = text(append(b, ','), "reporter_email", r.ReporterEmail, true)
		b = text(append(b, ','), "reporter_phone", r.ReporterPhone, true)
	}
	return append(b, "}}\n"...)
}

// writeGeoJSON writes the export as a GeoJSON FeatureCollection, a feature per line.
func writeGeoJSON(w io.Writer, cur *models.ExportCursor, contact bool) error {
	buf := make([]byte, 0, exportChunk+4096)
	buf = append(buf, `{"type":"FeatureCollection","features":[`...)
	n := 0
	var werr error
	err := cur.Each(func(r *models.ExportRow) error {
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = appendGeoFeature(buf, r, contact)
		if len(buf) >= exportChunk {
			if werr = writeChunk(w, buf); werr != nil {
				return werr
			}
			buf = buf[:0]
		}
		return nil
	})
	if err != nil {
		if werr == nil {
			_ = writeChunk(w, buf)
		}
		return err // without its closing brackets, the file does not parse: no silent truncation
	}
	buf = append(buf, "]}\n"...)
	return writeChunk(w, buf)
}

// exportGeoJSON streams the city's cases as a GeoJSON FeatureCollection of points
// (GET /v1/exports/cases.geojson), in WGS 84 longitude, latitude order.
func (s *Server) exportGeoJSON(c *fiber.Ctx) error {
	f, err := s.exportFilter(c)
	if err != nil {
		return err
	}
	return s.streamExport(c, f, "application/geo+json", "cases.geojson", func(w *bufio.Writer, cur *models.ExportCursor) error {
		return writeGeoJSON(w, cur, f.Contact)
	})
}

// streamExport takes the export's connection before answering (so that an unavailable
// database is still a problem+json), then streams the body from it: the response is
// written while the rows are read, a chunk at a time, and neither is ever held whole.
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
