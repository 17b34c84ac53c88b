package workflows_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// BenchmarkRetention measures the retention work on a city whose closed cases are all past
// their period: each case with its reporter, three events, a photo whose original is a real
// object in the store, two inbox entries, a supporter and an idempotency record. It runs
// the batches as the task does and reports the rate and the longest batch (one
// transaction, plus the object deletions before it): the point of batching is that no
// transaction grows with the city. CITYEYES_BENCH_RETENTION_CASES sets the number of cases
// (default 5000). docs/privacy.md has figures.
func BenchmarkRetention(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("CITYEYES_BENCH_RETENTION_CASES")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		b.StopTimer()
		db := testenv.DB(b)
		testenv.City(b, db)
		store, _ := testenv.Store(b, "http://cityeyes.test")
		now := time.Now().UTC()
		seedClosed(b, db.SQL(), store, n, now.AddDate(-3, 0, 0))
		b.StartTimer()

		start := time.Now()
		var batches []time.Duration
		for si, step := range []func() (int, error){
			func() (int, error) {
				return db.EraseOldOriginals(ctx, "testville", now.AddDate(0, 0, -365), models.PrivacyBatch, store.Delete, now)
			},
			func() (int, error) {
				return db.AnonymiseClosedCases(ctx, "testville", now.AddDate(0, 0, -730), models.PrivacyBatch, store.Delete, now)
			},
		} {
			for {
				t0 := time.Now()
				done, err := step()
				if err != nil {
					b.Fatal(err)
				}
				batches = append(batches, time.Since(t0))
				if d := time.Since(t0); d > time.Second {
					b.Logf("step %d batch %d: %v", si, len(batches), d)
				}
				if done < models.PrivacyBatch {
					break
				}
			}
		}
		elapsed := time.Since(start)

		b.StopTimer()
		var left int64
		if err := db.SQL().QueryRow("SELECT COUNT(*) FROM cases WHERE anonymised_at IS NULL").Scan(&left); err != nil || left != 0 {
			b.Fatalf("%d cases not anonymised (%v)", left, err)
		}
		if objs := testenv.Objects(b, store, "cases/"); len(objs) != 0 {
			b.Fatalf("%d originals left in the store", len(objs))
		}
		slices.Sort(batches)
		b.ReportMetric(float64(n)/elapsed.Seconds(), "cases/s")
		b.ReportMetric(float64(batches[len(batches)/2].Microseconds())/1000, "p50-batch-ms")
		b.ReportMetric(float64(batches[len(batches)-1].Microseconds())/1000, "max-batch-ms")
		b.ReportMetric(float64(len(batches)), "batches")
		b.StartTimer()
	}
}

// seedClosed writes n closed cases of testville, filed at the given time, with what belongs
// to them, in multi-row INSERTs, and a small object for each photo's original.
func seedClosed(b *testing.B, db *sql.DB, store storage.Store, n int, at time.Time) {
	b.Helper()
	var catID, deptID, areaID, bossID string
	if err := db.QueryRow("SELECT id, department_id FROM categories WHERE code = 'pothole'").Scan(&catID, &deptID); err != nil {
		b.Fatal(err)
	}
	if err := db.QueryRow("SELECT id FROM areas WHERE code = 'west'").Scan(&areaID); err != nil {
		b.Fatal(err)
	}
	if err := db.QueryRow("SELECT id FROM users WHERE email = 'boss@test.example'").Scan(&bossID); err != nil {
		b.Fatal(err)
	}
	rows := map[string][][]any{}
	add := func(table string, vals ...any) { rows[table] = append(rows[table], vals) }
	for i := range n {
		reporter, supporter, caseID, mediaID := models.NewID(), models.NewID(), models.NewID(), models.NewID()
		add("users", reporter, "citizen", at, at)
		add("users", supporter, "citizen", at, at)
		add("cases", caseID, fmt.Sprintf("TESTVILLE-B%07d", i), "testville", catID, areaID, deptID, reporter, "closed", "fixed",
			"words of a citizen", 0.5, -0.5, "some street", `{"depth":"deep"}`, at.Add(time.Hour), 2, at, at, 1)
		events := []string{models.NewID(), models.NewID(), models.NewID()}
		add("case_events", events[0], caseID, 1, "submit", reporter, "citizen", "", "submitted", true, "", at)
		add("case_events", events[1], caseID, 2, "close", bossID, "supervisor", "submitted", "closed", true, "", at.Add(time.Hour))
		add("case_events", events[2], caseID, 3, "rate", reporter, "citizen", "closed", "closed", false, "a comment", at.Add(2*time.Hour))
		key := "cases/" + caseID + "/" + mediaID + ".jpg"
		display := "cases/" + caseID + "/" + mediaID + "-display.jpg"
		add("media", mediaID, caseID, reporter, "before", key, "image/jpeg", 100, 10, 10, "x", display, display, at, at)
		add("notifications", models.NewID(), reporter, caseID, events[0], "submitted", at)
		add("notifications", models.NewID(), supporter, caseID, events[1], "closed", at)
		add("supporters", caseID, supporter, at)
		add("idempotency_keys", reporter, "key-"+caseID, "fp", caseID, at)
		if _, err := store.Put(ctx, key, bytes.NewReader(make([]byte, 100)), 100, "image/jpeg"); err != nil {
			b.Fatal(err)
		}
	}
	cols := map[string]string{
		"users": "id, role, created_at, updated_at",
		"cases": "id, number, jurisdiction_id, category_id, area_id, department_id, reporter_id, status, resolution, " +
			"description, lat, lon, address, attributes, closed_at, supporters, created_at, updated_at, version",
		"case_events":      "id, case_id, seq, type, actor_id, actor_role, from_status, to_status, public, note, created_at",
		"media":            "id, case_id, owner_id, kind, object_key, content_type, size, width, height, sha256, display_key, thumb_key, processed_at, created_at",
		"notifications":    "id, user_id, case_id, event_id, status, created_at",
		"supporters":       "case_id, user_id, created_at",
		"idempotency_keys": "user_id, key, fingerprint, case_id, created_at",
	}
	for _, table := range []string{"users", "cases", "case_events", "media", "notifications", "supporters", "idempotency_keys"} {
		all := rows[table]
		width := len(all[0])
		per := 10000 / width
		for len(all) > 0 {
			chunk := all[:min(per, len(all))]
			all = all[len(chunk):]
			var sb strings.Builder
			args := make([]any, 0, len(chunk)*width)
			for i, r := range chunk {
				if i > 0 {
					sb.WriteString(",")
				}
				sb.WriteString("(")
				for j := range r {
					if j > 0 {
						sb.WriteString(",")
					}
					fmt.Fprintf(&sb, "$%d", len(args)+j+1)
				}
				sb.WriteString(")")
				args = append(args, r...)
			}
			if _, err := db.Exec("INSERT INTO "+table+" ("+cols[table]+") VALUES "+sb.String(), args...); err != nil {
				b.Fatalf("seed %s: %v", table, err)
			}
		}
	}
}
