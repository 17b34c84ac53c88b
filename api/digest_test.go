package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/models"
)

// TestDigestInInbox: a supervisor's digest is an inbox entry like any other: listed among
// the notifications, counted unread, marked read.
func TestDigestInInbox(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	boss, err := h.db.StaffByEmail(ctx, "boss@test.example")
	if err != nil {
		t.Fatal(err)
	}
	rate := 0.5
	from := time.Date(2026, 6, 1, 23, 0, 0, 0, time.UTC)
	d, _, err := h.db.RecordDigest(ctx, models.Digest{UserID: boss.ID, JurisdictionID: "testville", Kind: models.DigestDaily,
		PeriodStart: from, PeriodEnd: from.Add(24 * time.Hour)},
		models.DigestFigures{Received: 7, Closed: 3, Backlog: 12, Overdue: 2, Due: 4, ClosedOnTime: 2, OnTimeRate: &rate}, false, h.now)
	if err != nil {
		t.Fatal(err)
	}
	token := h.staff("boss@test.example", "boss-pass")
	_, body := h.do("GET", "/v1/me/notifications", token, nil, "")
	var page struct {
		Items []struct {
			ID       string  `json:"id"`
			ReportID *string `json:"report_id"`
			Type     string  `json:"type"`
			Title    string  `json:"title"`
			Body     string  `json:"body"`
			Digest   *InboxDigest
		} `json:"items"`
		Unread int64 `json:"unread"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Unread != 1 || page.Items[0].ID != d.ID || page.Items[0].ReportID != nil || page.Items[0].Type != "digest" ||
		page.Items[0].Title != "Daily digest" || page.Items[0].Body != "7 received, 3 closed, 50% closed on time; 12 open, 2 overdue." ||
		page.Items[0].Digest == nil || page.Items[0].Digest.Figures.Received != 7 {
		t.Fatalf("%s", body)
	}
	resp, body := h.json("POST", "/v1/me/notifications/read", token, MarkReadRequest{IDs: []string{d.ID}})
	var mr MarkReadResult
	_ = json.Unmarshal(body, &mr)
	if resp.StatusCode != 200 || mr.Marked != 1 || mr.Unread != 0 {
		t.Fatalf("mark read: %d %s", resp.StatusCode, body)
	}
}
