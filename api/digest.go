package api

import (
	"encoding/json"
	"time"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/notifications"
)

// InboxDigest is a supervisor's digest in their inbox: the period and its headline figures.
type InboxDigest struct {
	Kind        string               `json:"kind"`
	PeriodStart time.Time            `json:"period_start"`
	PeriodEnd   time.Time            `json:"period_end"`
	Figures     models.DigestFigures `json:"figures"`
}

// MarshalJSON writes a digest's report_id, event_id and status, which it has none of, as
// null rather than as empty strings.
func (i InboxItem) MarshalJSON() ([]byte, error) {
	type plain InboxItem
	orNull := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return json.Marshal(struct {
		plain
		ReportID *string `json:"report_id"`
		EventID  *string `json:"event_id"`
		Status   *string `json:"status"`
	}{plain(i), orNull(i.ReportID), orNull(i.EventID), orNull(i.Status)})
}

// digestItem is a digest as an inbox entry, in the caller's language.
func digestItem(locale string, n models.Notification) (InboxItem, error) {
	d := n.Digest
	var f models.DigestFigures
	if err := json.Unmarshal([]byte(d.Figures), &f); err != nil {
		return InboxItem{}, err
	}
	onTime := -1.0
	if f.OnTimeRate != nil {
		onTime = *f.OnTimeRate
	}
	title, body := notifications.DigestText(locale, d.Kind, f.Received, f.Closed, f.Backlog, f.Overdue, onTime)
	return InboxItem{ID: d.ID, Type: "digest", Title: title, Body: body, Read: d.ReadAt != nil, CreatedAt: d.CreatedAt.UTC(),
		Digest: &InboxDigest{Kind: d.Kind, PeriodStart: d.PeriodStart.UTC(), PeriodEnd: d.PeriodEnd.UTC(), Figures: f}}, nil
}
