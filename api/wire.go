package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// The wire types: request and response bodies exactly as openapi.yaml describes them.

// DeviceRequest registers a citizen's device.
type DeviceRequest struct {
	DeviceID  string `json:"device_id"`
	Platform  string `json:"platform"`
	PushToken string `json:"push_token,omitempty"`
	Locale    string `json:"locale,omitempty"`
}

// DeviceInfo is a device as registered.
type DeviceInfo struct {
	DeviceID string `json:"device_id"`
	Platform string `json:"platform"`
	Locale   string `json:"locale"`
	Push     bool   `json:"push"` // it has a live push token
}

// DeviceResponse is a citizen's token.
type DeviceResponse struct {
	Token     string    `json:"token"`
	UserID    string    `json:"user_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LoginRequest signs a member of staff in.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// LoginResponse is a member of staff's token.
type LoginResponse struct {
	Token        string    `json:"token"`
	RefreshToken string    `json:"refresh_token"`
	UserID       string    `json:"user_id"`
	Role         string    `json:"role"`
	Jurisdiction string    `json:"jurisdiction"`
	Department   *string   `json:"department"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// RefreshRequest swaps a refresh token for new tokens.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// Staff is a member of staff as administrators see them.
type Staff struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Department *string   `json:"department"`
	Disabled   bool      `json:"disabled"`
	CreatedAt  time.Time `json:"created_at"`
}

// StaffRequest creates a member of staff (all of email, role, password) or changes one
// (only the fields given).
type StaffRequest struct {
	Email      *string `json:"email,omitempty"`
	Name       *string `json:"name,omitempty"`
	Role       *string `json:"role,omitempty"`
	Department *string `json:"department,omitempty"`
	Password   *string `json:"password,omitempty"`
	Disabled   *bool   `json:"disabled,omitempty"`
}

// CategoryList is the answer to "what can I report here?".
type CategoryList struct {
	Jurisdiction JurisdictionRef  `json:"jurisdiction"`
	Area         *string          `json:"area"`
	Categories   []CategoryDetail `json:"categories"`
}

// JurisdictionRef names a city.
type JurisdictionRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CategoryDetail is one category with its questions.
type CategoryDetail struct {
	Code        string             `json:"code"`
	Name        string             `json:"name"`
	Group       string             `json:"group"`
	Description string             `json:"description"`
	Attributes  []models.Attribute `json:"attributes"`
}

// ReportJSON is a report submitted as JSON (photos uploaded beforehand).
type ReportJSON struct {
	Category    string         `json:"category"`
	Description string         `json:"description"`
	Lat         *float64       `json:"lat"`
	Lon         *float64       `json:"lon"`
	Address     string         `json:"address"`
	Attributes  map[string]any `json:"attributes,omitempty"`
	MediaIDs    []string       `json:"media_ids,omitempty"`
}

// Report is a report (a case) as its reporter and staff see it; the public view leaves out
// what is personal.
type Report struct {
	ID          string  `json:"id"`
	Number      string  `json:"number"`
	Status      string  `json:"status"`
	Resolution  *string `json:"resolution"`
	Category    string  `json:"category"`
	Department  *string `json:"department"`
	Area        *string `json:"area"`
	Description string  `json:"description"`
	Address     string  `json:"address"`
	Lat         float64 `json:"lat"`
	Lon         float64 `json:"lon"`
	// LocationSource is "device" (the phone's position) or "photo_exif" (the report came
	// without a position and its photo's GPS tags gave it).
	LocationSource string         `json:"location_source"`
	Attributes     map[string]any `json:"attributes,omitempty"`
	Priority       int            `json:"priority"`
	DueAt          *time.Time     `json:"due_at"`
	Supporters     int            `json:"supporters"`
	Version        int            `json:"version"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	Photos         []Photo        `json:"photos"`
	Timeline       []Event        `json:"timeline,omitempty"`
	// LikelyDuplicates, in the answer to a new report, are open reports of the same category
	// close by and recent: the app can offer a "me too" on one of them instead.
	LikelyDuplicates []DuplicateRef `json:"likely_duplicates,omitempty"`
}

// DuplicateCheck is the answer to "has this been reported already?".
type DuplicateCheck struct {
	Duplicates []DuplicateRef `json:"duplicates"`
}

// DuplicateRef points at a likely duplicate.
type DuplicateRef struct {
	ID        string  `json:"id"`
	Number    string  `json:"number"`
	Status    string  `json:"status"`
	DistanceM float64 `json:"distance_m"`
}

// Photo is a photo of a report. Its links are short-lived and signed. Everyone gets the
// versions the photo task made (oriented, without EXIF: no GPS position, no camera data);
// staff also get the original. Until the versions exist, url is null for everyone but staff.
type Photo struct {
	ID           string    `json:"id"`
	Kind         string    `json:"kind"`
	ContentType  string    `json:"content_type"`
	Size         int64     `json:"size"`
	Width        int       `json:"width"`
	Height       int       `json:"height"`
	Processing   bool      `json:"processing"`
	URL          *string   `json:"url"`
	ThumbnailURL *string   `json:"thumbnail_url"`
	OriginalURL  *string   `json:"original_url,omitempty"`
	URLExpires   time.Time `json:"url_expires_at"`
}

// Event is one entry of a report's timeline.
type Event struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	FromStatus *string   `json:"from_status"`
	ToStatus   string    `json:"to_status"`
	ActorRole  string    `json:"actor_role"`
	Public     bool      `json:"public"`
	Note       string    `json:"note,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Page is one page of a list with the cursor of the next ("" at the end).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// QueueCounts are the numbers on a work queue's tabs.
type QueueCounts struct {
	Statuses   map[string]int64 `json:"statuses"`
	Overdue    int64            `json:"overdue"`
	Unassigned int64            `json:"unassigned"`
}

// ActionRequest is a case handler's or supervisor's action on a case.
type ActionRequest struct {
	Action      string     `json:"action"`
	Version     int        `json:"version,omitempty"`
	Note        string     `json:"note,omitempty"`
	Public      bool       `json:"public,omitempty"`
	Department  string     `json:"department,omitempty"`
	Assignee    *string    `json:"assignee,omitempty"`
	Resolution  string     `json:"resolution,omitempty"`
	DuplicateOf *string    `json:"duplicate_of,omitempty"`
	Until       *time.Time `json:"until,omitempty"`
}

// BulkActionRequest is one action for several cases.
type BulkActionRequest struct {
	CaseIDs []string `json:"case_ids"`
	ActionRequest
}

// BulkActionResult says what an action did to each case, in the order asked.
type BulkActionResult struct {
	Results []BulkItem `json:"results"`
}

// BulkItem is one case's outcome: its new status and version, or the problem it met.
type BulkItem struct {
	ID         string   `json:"id"`
	Status     int      `json:"status"`
	CaseStatus string   `json:"case_status,omitempty"`
	Version    int      `json:"version,omitempty"`
	Problem    *Problem `json:"problem,omitempty"`
}

// FeedbackRequest is the reporter's answer to a resolved case.
type FeedbackRequest struct {
	Action  string `json:"action"`
	Version int    `json:"version,omitempty"`
	Rating  int    `json:"rating,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// InboxItem is one notification in a user's inbox.
type InboxItem struct {
	ID         string    `json:"id"`
	ReportID   string    `json:"report_id"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	Status     string    `json:"status"`
	Resolution *string   `json:"resolution"`
	Title      string    `json:"title"`
	Body       string    `json:"body"`
	Read       bool      `json:"read"`
	CreatedAt  time.Time `json:"created_at"`
	// Digest is set on a supervisor's daily or weekly digest, which has no report, event or
	// status: those are then null (api/digest.go).
	Digest *InboxDigest `json:"digest,omitempty"`
}

// NearbyList is the open reports around a point.
type NearbyList struct {
	Items []NearbyItem `json:"items"`
}

// NearbyItem is a report in its public view with its distance from the point asked about.
type NearbyItem struct {
	Report    Report  `json:"report"`
	DistanceM float64 `json:"distance_m"`
}

// SupportResult is a report after a "me too"; Counted is false when the citizen had
// already supported it.
type SupportResult struct {
	Report  Report `json:"report"`
	Counted bool   `json:"counted"`
}

// MarkReadRequest lists inbox entries to mark read; none means all.
type MarkReadRequest struct {
	IDs []string `json:"ids,omitempty"`
}

// MarkReadResult says how many entries were marked and how many stay unread.
type MarkReadResult struct {
	Marked int64 `json:"marked"`
	Unread int64 `json:"unread"`
}

// InboxPage is a page of an inbox with the number of unread entries.
type InboxPage struct {
	Items      []InboxItem `json:"items"`
	NextCursor string      `json:"next_cursor"`
	Unread     int64       `json:"unread"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// readJSON decodes a JSON body of at most max bytes into v.
func readJSON(c *fiber.Ctx, v any, max int64) error {
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	if !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return models.Problemf(models.ErrUnsupportedMedia, "expected-json", "send the body as application/json")
	}
	var r io.Reader = c.Context().RequestBodyStream()
	if r == nil {
		r = strings.NewReader(string(c.Body()))
	}
	body, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return models.Problemf(models.ErrMalformed, "malformed-json", "the JSON body cannot be read: %v", err)
	}
	if int64(len(body)) > max {
		return models.Problemf(models.ErrTooLarge, "body-too-large", "the JSON body is over %d bytes", max)
	}
	// Text a database cannot store as it is (invalid UTF-8, which Go's decoder would quietly
	// replace, or a NUL, which PostgreSQL refuses) is refused here, for every JSON body.
	if !utf8.Valid(body) || bytes.Contains(bytes.ToLower(body), []byte(`\u0000`)) {
		return models.Problemf(models.ErrInvalid, "invalid-text", "the JSON body has text that is not valid UTF-8, or a NUL character")
	}
	if err := json.Unmarshal(body, v); err != nil {
		if len(bytes.TrimSpace(body)) == 0 || errors.Is(err, io.ErrUnexpectedEOF) {
			return models.Problemf(models.ErrMalformed, "malformed-json", "the JSON body is empty or cut short")
		}
		var syn *json.SyntaxError
		if errors.As(err, &syn) && syn.Offset >= int64(len(body)) {
			return models.Problemf(models.ErrMalformed, "malformed-json", "the JSON body is empty or cut short")
		}
		return models.Problemf(models.ErrMalformed, "malformed-json", "the JSON body cannot be read: %v", err)
	}
	return nil
}

// toReport converts a case and what belongs to it into its wire form. full is the view of
// the reporter and staff; otherwise attributes and internal events are left out.
func (s *Server) toReport(ctx context.Context, c *models.Case, full, staff bool) (*Report, error) {
	rs, err := s.toReports(ctx, []models.Case{*c}, full, staff, true)
	if err != nil {
		return nil, err
	}
	return &rs[0], nil
}

// toReports converts a page of cases for a list: the codes of categories, departments and
// areas come from a cache and the photos of the whole page from one query, so a page of 50
// costs a couple of queries rather than a few hundred. With timeline, each report
// carries its events (a single report's view).
func (s *Server) toReports(ctx context.Context, cases []models.Case, full, staff, timeline bool) ([]Report, error) {
	ids := make([]string, len(cases))
	for i := range cases {
		ids[i] = cases[i].ID
	}
	media, err := s.db.MediaOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	return s.toReportsWith(ctx, cases, media, full, staff, timeline)
}

// newReport is the reporter's view of a case just created with the given photos, which the
// caller has in hand and need not be read back.
func (s *Server) newReport(ctx context.Context, c *models.Case, photos []models.Media) (*Report, error) {
	// The order MediaOf reads them in: one creation time for all, then by id.
	ms := slices.Clone(photos)
	slices.SortStableFunc(ms, func(a, b models.Media) int { return strings.Compare(a.ID, b.ID) })
	rs, err := s.toReportsWith(ctx, []models.Case{*c}, map[string][]models.Media{c.ID: ms}, true, false, true)
	if err != nil {
		return nil, err
	}
	return &rs[0], nil
}

// toReportsWith is toReports with the cases' photos given, by case id.
func (s *Server) toReportsWith(ctx context.Context, cases []models.Case, media map[string][]models.Media, full, staff, timeline bool) ([]Report, error) {
	var err error
	// A category's, department's or area's id never changes its code (configuration
	// matches rows by code), so the mapping is cached for the life of the process.
	code := func(id string, load func(context.Context, string) (string, error)) (string, error) {
		if c, ok := s.codes.Load(id); ok {
			return c.(string), nil
		}
		c, err := load(ctx, id)
		if err == nil {
			s.codes.Store(id, c)
		}
		return c, err
	}
	sensitive := map[string]bool{} // by category id, for this page
	out := make([]Report, 0, len(cases))
	for i := range cases {
		c := &cases[i]
		r := Report{
			ID: c.ID, Number: c.Number, Status: string(c.Status),
			Description: c.Description, Address: c.Address, Lat: c.Lat, Lon: c.Lon, LocationSource: c.LocationSource,
			Priority: c.Priority, DueAt: utc(c.DueAt), Supporters: c.Supporters, Version: c.Version,
			CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(), Photos: []Photo{},
		}
		if r.Category, err = code(c.CategoryID, s.db.CategoryCode); err != nil {
			return nil, err
		}
		if c.Resolution != "" {
			res := string(c.Resolution)
			r.Resolution = &res
		}
		if c.DepartmentID != nil {
			d, err := code(*c.DepartmentID, s.db.DepartmentCode)
			if err != nil {
				return nil, err
			}
			r.Department = &d
		}
		if c.AreaID != nil {
			a, err := code(*c.AreaID, s.db.AreaCode)
			if err != nil {
				return nil, err
			}
			r.Area = &a
		}
		if full {
			_ = json.Unmarshal([]byte(c.Attributes), &r.Attributes)
		} else {
			sens, ok := sensitive[c.CategoryID]
			if !ok {
				cat, err := s.db.Category(ctx, c.CategoryID)
				if err != nil {
					return nil, err
				}
				sens, sensitive[c.CategoryID] = cat.Sensitive, cat.Sensitive
			}
			if sens {
				// In public, a sensitive report is somewhere in a cell of about 1 km, with
				// no address.
				r.Lat, r.Lon, r.Address = coarse(c.Lat), coarse(c.Lon), ""
			}
		}
		for _, m := range media[c.ID] {
			ph, err := s.toPhoto(ctx, &m, staff)
			if err != nil {
				return nil, err
			}
			r.Photos = append(r.Photos, *ph)
		}
		if timeline {
			if r.Timeline, err = s.timeline(ctx, c.ID, staff); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// photoLinkTTL is how long a photo link works: long enough to show a page, short enough
// that a leaked link soon stops working.
const photoLinkTTL = 15 * time.Minute

// toPhoto gives a photo's links as the caller may see them.
func (s *Server) toPhoto(ctx context.Context, m *models.Media, staff bool) (*Photo, error) {
	sign := func(key *string) (*string, error) {
		if key == nil {
			return nil, nil
		}
		u, err := s.store.SignedGetURL(ctx, *key, photoLinkTTL)
		return &u, err
	}
	ph := &Photo{ID: m.ID, Kind: m.Kind, ContentType: m.ContentType, Size: m.Size, Width: m.Width, Height: m.Height,
		Processing: m.ProcessedAt == nil, URLExpires: s.now().Add(photoLinkTTL).UTC().Truncate(time.Second)}
	var err error
	if m.DisplayKey != nil {
		ph.ContentType = "image/jpeg"
		if ph.URL, err = sign(m.DisplayKey); err != nil {
			return nil, err
		}
		if ph.ThumbnailURL, err = sign(m.ThumbKey); err != nil {
			return nil, err
		}
	}
	if staff && m.OriginalDeletedAt == nil { // the city's retention may have deleted it
		if ph.OriginalURL, err = sign(&m.ObjectKey); err != nil {
			return nil, err
		}
		if ph.URL == nil {
			ph.URL = ph.OriginalURL
		}
	}
	return ph, nil
}

// timeline is a case's events as the caller may see them: staff all, others the public ones.
func (s *Server) timeline(ctx context.Context, caseID string, staff bool) ([]Event, error) {
	evs, err := s.db.Timeline(ctx, caseID, !staff)
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(evs))
	for _, e := range evs {
		ev := Event{ID: e.ID, Type: string(e.Type), ToStatus: string(e.ToStatus), ActorRole: string(e.ActorRole),
			Public: e.Public, CreatedAt: e.CreatedAt.UTC()}
		if e.FromStatus != "" {
			from := string(e.FromStatus)
			ev.FromStatus = &from
		}
		if staff || e.Public {
			ev.Note = e.Note
		}
		out = append(out, ev)
	}
	return out, nil
}

// coarse rounds a coordinate to two decimals: about a kilometre.
func coarse(v float64) float64 { return math.Round(v*100) / 100 }

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
