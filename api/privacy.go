package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/notifications"
)

// privacyRoutes mounts the routes of a citizen's export and deletion of their personal data.
func (s *Server) privacyRoutes(app *fiber.App, v1 fiber.Router) {
	citizen := s.auth(models.RoleCitizen)
	v1.Get("/me/export", citizen, s.exportMe)
	v1.Delete("/me", s.deletedAlready, citizen, s.deleteMe)
}

// PersonalExport is everything personal City Eyes holds on a citizen (GET /v1/me/export).
type PersonalExport struct {
	ExportedAt time.Time      `json:"exported_at"`
	User       ExportUser     `json:"user"`
	Devices    []ExportDevice `json:"devices"`
	// Open311Contact is set for a citizen who also reported through an Open311 client.
	Open311Contact  *ExportContact   `json:"open311_contact"`
	Reports         []Report         `json:"reports"`
	Supports        []ExportSupport  `json:"supports"`
	Feedback        []ExportFeedback `json:"feedback"`
	Notifications   []InboxItem      `json:"notifications"`
	IdempotencyKeys []ExportKey      `json:"idempotency_keys"`
	Uploads         []ExportUpload   `json:"uploads"`
}

// ExportUser is a citizen's account.
type ExportUser struct {
	ID        string    `json:"id"`
	Role      string    `json:"role"`
	Email     *string   `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// ExportDevice is one of a citizen's devices. The device id and the push token are shown
// masked: whoever holds the device id can sign in as the citizen, and an export file is
// often kept, mailed and shared.
type ExportDevice struct {
	DeviceID  string    `json:"device_id"`
	Platform  string    `json:"platform"`
	Locale    string    `json:"locale"`
	PushToken *string   `json:"push_token"`
	Push      bool      `json:"push"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ExportContact is the contact details an Open311 client sent with a citizen's reports.
type ExportContact struct {
	Email     *string   `json:"email"`
	FirstName string    `json:"first_name"`
	LastName  string    `json:"last_name"`
	Phone     string    `json:"phone"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ExportSupport is a "me too" a citizen said.
type ExportSupport struct {
	ReportID  string    `json:"report_id"`
	Number    string    `json:"number"`
	CreatedAt time.Time `json:"created_at"`
}

// ExportFeedback is a citizen's confirmation, reopening or rating of their report.
type ExportFeedback struct {
	ReportID  string    `json:"report_id"`
	Number    string    `json:"number"`
	Action    string    `json:"action"`
	Rating    *int      `json:"rating"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
}

// ExportKey is an Idempotency-Key the citizen's app sent with a report.
type ExportKey struct {
	Key       string    `json:"key"`
	ReportID  string    `json:"report_id"`
	CreatedAt time.Time `json:"created_at"`
}

// ExportUpload is a photo the citizen's app uploaded directly and has not named in a report
// (yet), with a short-lived link to it.
type ExportUpload struct {
	ID          string    `json:"id"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	URL         string    `json:"url"`
	ExpiresAt   time.Time `json:"expires_at"`
	CreatedAt   time.Time `json:"created_at"`
}

// exportPage is how many reports the export reads at a time.
const exportPage = 100

// exportMe answers with everything personal City Eyes holds on the caller
// (GET /v1/me/export): their account, devices, reports in full with timelines and signed
// links to the originals of their photos, supports, feedback, inbox, idempotency records and
// direct uploads not yet in a report.
func (s *Server) exportMe(c *fiber.Ctx) error {
	ctx := c.UserContext()
	uid := caller(c).UserID
	pd, err := s.db.PersonalDataOf(ctx, uid)
	if err != nil {
		return err
	}
	out := PersonalExport{
		ExportedAt: s.now().UTC(),
		User: ExportUser{ID: pd.User.ID, Role: string(pd.User.Role), Email: pd.User.Email, Name: pd.User.Name,
			CreatedAt: pd.User.CreatedAt.UTC()},
		Devices: []ExportDevice{}, Reports: []Report{}, Supports: []ExportSupport{}, Feedback: []ExportFeedback{},
		Notifications: []InboxItem{}, IdempotencyKeys: []ExportKey{}, Uploads: []ExportUpload{},
	}
	for _, d := range pd.Devices {
		ed := ExportDevice{DeviceID: mask(d.DeviceID), Platform: d.Platform, Locale: d.Locale, Push: d.PushToken != nil && d.TokenInvalidAt == nil,
			CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
		if d.PushToken != nil {
			m := mask(*d.PushToken)
			ed.PushToken = &m
		}
		out.Devices = append(out.Devices, ed)
	}
	if ct := pd.Contact; ct != nil {
		out.Open311Contact = &ExportContact{Email: ct.Email, FirstName: ct.FirstName, LastName: ct.LastName, Phone: ct.Phone,
			CreatedAt: ct.CreatedAt.UTC(), UpdatedAt: ct.UpdatedAt.UTC()}
	}
	if out.Reports, err = s.exportReports(ctx, uid); err != nil {
		return err
	}
	for _, sp := range pd.Supports {
		out.Supports = append(out.Supports, ExportSupport{ReportID: sp.CaseID, Number: pd.Numbers[sp.CaseID], CreatedAt: sp.CreatedAt.UTC()})
	}
	for _, e := range pd.Feedback {
		f := ExportFeedback{ReportID: e.CaseID, Number: pd.Numbers[e.CaseID], Action: string(e.Type), Comment: e.Note, CreatedAt: e.CreatedAt.UTC()}
		var data struct {
			Rating *int `json:"rating"`
		}
		_ = json.Unmarshal([]byte(e.Data), &data)
		f.Rating = data.Rating
		out.Feedback = append(out.Feedback, f)
	}
	locale, _, _ := strings.Cut(c.Get(fiber.HeaderAcceptLanguage, "en"), ",")
	for _, n := range pd.Notifications {
		num := pd.Numbers[n.CaseID]
		title, body, staff := notifications.StaffText(locale, string(n.EventType), num)
		if !staff {
			title, body = notifications.Text(locale, string(n.Status), string(n.Resolution), num)
		}
		item := InboxItem{ID: n.ID, ReportID: n.CaseID, EventID: n.EventID, Type: string(n.EventType), Status: string(n.Status),
			Title: title, Body: body, Read: n.ReadAt != nil, CreatedAt: n.CreatedAt.UTC()}
		if n.Resolution != "" {
			r := string(n.Resolution)
			item.Resolution = &r
		}
		out.Notifications = append(out.Notifications, item)
	}
	for _, k := range pd.IdempotencyKeys {
		out.IdempotencyKeys = append(out.IdempotencyKeys, ExportKey{Key: k.Key, ReportID: k.CaseID, CreatedAt: k.CreatedAt.UTC()})
	}
	for _, up := range pd.Uploads {
		link, err := s.store.SignedGetURL(ctx, up.ObjectKey, photoLinkTTL)
		if err != nil {
			return err
		}
		out.Uploads = append(out.Uploads, ExportUpload{ID: up.ID, ContentType: up.ContentType, Size: up.Size, URL: link,
			ExpiresAt: up.ExpiresAt.UTC(), CreatedAt: up.CreatedAt.UTC()})
	}
	// Personal data: no cache on the way may keep it.
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="cityeyes-my-data.json"`)
	return c.JSON(out)
}

// exportReports is every report of a citizen in the reporter's view with its timeline, a
// page at a time, each photo with a short-lived signed link to its original while the city
// still keeps it.
func (s *Server) exportReports(ctx context.Context, uid string) ([]Report, error) {
	out := []Report{}
	cursor := ""
	for {
		cs, next, err := s.db.ReporterCases(ctx, uid, cursor, exportPage)
		if err != nil {
			return nil, err
		}
		rs, err := s.toReports(ctx, cs, true, false, true)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(cs))
		for i := range cs {
			ids[i] = cs[i].ID
		}
		media, err := s.db.MediaOf(ctx, ids)
		if err != nil {
			return nil, err
		}
		originals := map[string]string{} // media id → object key of a kept original
		for _, ms := range media {
			for _, m := range ms {
				if m.OriginalDeletedAt == nil {
					originals[m.ID] = m.ObjectKey
				}
			}
		}
		for i := range rs {
			for j := range rs[i].Photos {
				ph := &rs[i].Photos[j]
				if key, ok := originals[ph.ID]; ok {
					u, err := s.store.SignedGetURL(ctx, key, photoLinkTTL)
					if err != nil {
						return nil, err
					}
					ph.OriginalURL = &u
				}
			}
		}
		out = append(out, rs...)
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// mask shows the last four characters of an identifier, enough to tell one's devices apart.
func mask(s string) string {
	if len(s) <= 8 {
		return "…"
	}
	return "…" + s[len(s)-4:]
}

// deleteMe deletes the caller's personal data (DELETE /v1/me?confirm=delete): their reports
// stay for the city, anonymised, and their token stops working. docs/privacy.md says what
// goes and what stays.
func (s *Server) deleteMe(c *fiber.Ctx) error {
	if c.Query("confirm") != "delete" {
		return models.Problemf(models.ErrInvalid, "confirmation-required",
			"deleting your data cannot be undone: send DELETE /v1/me?confirm=delete to go ahead")
	}
	if _, err := s.db.EraseCitizen(c.UserContext(), caller(c).UserID, s.store.Delete, s.now()); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// deletedAlready makes DELETE /v1/me idempotent: a confirmed retry with the token of an
// account already deleted (the first answer was lost) gets the same 204; every other route
// answers that token with 401.
func (s *Server) deletedAlready(c *fiber.Ctx) error {
	err := c.Next()
	var p *models.Problem
	if err != nil && c.Query("confirm") == "delete" && errors.As(err, &p) && p.Type == "account-deleted" {
		return c.SendStatus(fiber.StatusNoContent)
	}
	return err
}
