// Command seed fills a PostgreSQL database with many cases of the demo city, for the
// benchmarks of docs/benchmarks.md, and measures the work queue on them.
//
//	go run ./cmd/seed -db postgres://... -cases 1000000     # load the demo city and seed
//	go run ./cmd/seed -db postgres://... -bench             # time the queue and explain its plans
//
// The cases are spread over the year before now, over every department and area, in every
// status, with deadlines from their category's SLA: enough like a real city's year that the
// planner chooses as it would there. They are written by SQL in the database (one INSERT
// ... SELECT per batch), not one by one.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/city-eyes/cityeyes/migrations"
	"github.com/city-eyes/cityeyes/models"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("seed", flag.ContinueOnError)
	url := fl.String("db", os.Getenv("CITYEYES_DATABASE_URL"), "PostgreSQL URL")
	n := fl.Int("cases", 1_000_000, "cases to add")
	bench := fl.Bool("bench", false, "time the work queue instead of seeding")
	benchKPIs := fl.Bool("stats", false, "time the supervisors' KPIs over the last year instead of seeding")
	api := fl.String("api", "", "with -bench: also time GET /v1/queue through the API at this base URL (a server on this machine)")
	login := fl.String("login", "dot@nyc.demo:demo-dot", "with -api: the handler who reads the queue, email:password")
	demo := fl.String("city", "cmd/cityeyes/demo/nyc.yaml", "city configuration to load first")
	if err := fl.Parse(args); err != nil {
		return err
	}
	db, err := models.Open(ctx, *url)
	if err != nil {
		return err
	}
	defer db.Close()
	if db.Dialect() != models.Postgres {
		return fmt.Errorf("seed works on PostgreSQL only (the benchmarks are for the production database)")
	}
	if _, err := migrations.Up(ctx, db.SQL(), migrations.Postgres); err != nil {
		return err
	}
	if *benchKPIs {
		return benchStats(ctx, db, *api, out)
	}
	if *bench {
		if *api != "" {
			if err := benchHTTP(*api, *login, out); err != nil {
				return err
			}
		}
		return benchQueue(ctx, db, out)
	}
	data, err := os.ReadFile(*demo)
	if err != nil {
		return err
	}
	city, err := models.ParseCityConfig(data, os.DirFS(dirOf(*demo)).(fs.ReadFileFS).ReadFile)
	if err != nil {
		return err
	}
	if _, err := db.ApplyCityConfig(ctx, city, time.Now()); err != nil {
		return err
	}
	return seed(ctx, db, city.Jurisdiction.ID, *n, out)
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "."
}

// seed adds n cases in batches. Statuses follow a city where most cases of the year are
// closed and the recent ones are still being worked.
func seed(ctx context.Context, db *models.DB, jurisdiction string, n int, out io.Writer) error {
	sqlDB := db.SQL()
	var reporter string
	err := sqlDB.QueryRowContext(ctx, `INSERT INTO users (id, role, created_at, updated_at)
		VALUES (gen_random_uuid(), 'citizen', now(), now()) RETURNING id`).Scan(&reporter)
	if err != nil {
		return err
	}
	const batch = 50_000
	start := time.Now()
	for done := 0; done < n; done += batch {
		size := min(batch, n-done)
		// Each row picks a category (and with it its department and SLA) and an area at
		// random, a creation time in the last year, and a status by age.
		_, err := sqlDB.ExecContext(ctx, `
WITH cats AS (SELECT id, department_id, GREATEST(sla_hours, 1) AS sla, row_number() OVER (ORDER BY code) AS k
              FROM categories WHERE jurisdiction_id = $1 AND department_id IS NOT NULL),
     ncat AS (SELECT count(*) AS c FROM cats),
     areas AS (SELECT id, row_number() OVER (ORDER BY code) AS k FROM areas WHERE jurisdiction_id = $1),
     narea AS (SELECT count(*) AS c FROM areas),
     g AS (SELECT i, random() AS r1, random() AS r2, random() AS r3, random() AS age
           FROM generate_series(1, $2::int) AS i),
     rows AS (
       SELECT g.i, cats.id AS category_id, cats.department_id, cats.sla, areas.id AS area_id,
              now() - (g.age * interval '365 days') AS created_at, g.age, g.r3
       FROM g
       JOIN ncat ON TRUE JOIN narea ON TRUE
       JOIN cats ON cats.k = 1 + floor(g.r1 * ncat.c)::int
       JOIN areas ON areas.k = 1 + floor(g.r2 * narea.c)::int)
INSERT INTO cases (id, number, jurisdiction_id, category_id, area_id, department_id, reporter_id, status, resolution,
                   priority, description, lat, lon, attributes, due_at, dispatched_at, first_response_at, resolved_at, closed_at, version, created_at, updated_at)
SELECT gen_random_uuid(), $1 || '-S' || lpad(($3::int + rows.i)::text, 8, '0'), $1, category_id, area_id, department_id, $4,
       CASE WHEN age > 0.05 OR r3 < 0.3 THEN 'closed' WHEN r3 < 0.45 THEN 'dispatched' WHEN r3 < 0.6 THEN 'accepted'
            WHEN r3 < 0.8 THEN 'in_progress' ELSE 'resolved' END,
       CASE WHEN age > 0.05 OR r3 < 0.3 THEN 'fixed' ELSE '' END,
       floor(r3 * 3)::int, 'seeded case', 40.7, -73.9, '{}',
       created_at + sla * interval '1 hour', created_at + interval '2 minutes',
       -- Worked cases were answered within a third of their SLA; closed ones resolved a
       -- little before their closure, resolved ones at nine tenths of it.
       CASE WHEN age > 0.05 OR r3 >= 0.3 THEN created_at + (0.02 + r3 * 0.3) * sla * interval '1 hour' END,
       CASE WHEN age > 0.05 OR r3 < 0.3 THEN created_at + (r3 * 1.9 * sla + 0.01) * interval '1 hour'
            WHEN r3 >= 0.8 THEN created_at + 0.9 * sla * interval '1 hour' END,
       CASE WHEN age > 0.05 OR r3 < 0.3 THEN created_at + (r3 * 2 * sla + 0.02) * interval '1 hour' END,
       3, created_at, created_at
FROM rows`, jurisdiction, size, done, reporter)
		if err != nil {
			return fmt.Errorf("batch at %d: %w", done, err)
		}
		// The batch's events, from its rows' times: submit, route, accept (the first
		// response), resolve, and confirm (closure, two in five rated); a few reopens (3% of
		// closed cases) and deferrals (2% of all), which the KPIs read from the log.
		_, err = sqlDB.ExecContext(ctx, `
INSERT INTO case_events (id, case_id, seq, type, actor_role, from_status, to_status, public, data, created_at)
SELECT gen_random_uuid(), c.id, v.seq, v.type, v.role, v.fs, v.ts, v.pub, v.data::jsonb, v.at
FROM cases c CROSS JOIN LATERAL (VALUES
  (1, 'submit', 'citizen', '', 'submitted', true, '{}', c.created_at),
  (2, 'route', 'system', 'submitted', 'dispatched', true, '{}', c.dispatched_at),
  (3, 'accept', 'handler', 'dispatched', 'accepted', true, '{}', c.first_response_at),
  (4, 'resolve', 'handler', 'in_progress', 'resolved', true, '{}', c.resolved_at),
  (5, 'confirm', 'citizen', 'resolved', 'closed', true,
      CASE WHEN random() < 0.4 THEN '{"rating": ' || (1 + floor(random() * 5))::int || '}' ELSE '{}' END, c.closed_at),
  (6, 'reopen', 'citizen', 'resolved', 'dispatched', true, '{}',
      CASE WHEN c.closed_at IS NOT NULL AND random() < 0.03 THEN c.resolved_at - interval '1 minute' END),
  (7, 'defer', 'handler', 'accepted', 'accepted', false, '{}',
      CASE WHEN c.first_response_at IS NOT NULL AND random() < 0.02 THEN c.first_response_at + interval '1 minute' END)
) AS v(seq, type, role, fs, ts, pub, data, at)
WHERE c.jurisdiction_id = $1 AND c.number BETWEEN $1 || '-S' || lpad(($2::int + 1)::text, 8, '0')
                                         AND $1 || '-S' || lpad(($2::int + $3::int)::text, 8, '0')
  AND v.at IS NOT NULL`, jurisdiction, done, size)
		if err != nil {
			return fmt.Errorf("events of the batch at %d: %w", done, err)
		}
		fmt.Fprintf(out, "\r%d cases", done+size)
	}
	// The lifecycle keeps on the case row what the KPIs read of its history, in the same
	// transaction as the event; the events above were written without it, so fill it in.
	for _, q := range []string{
		"UPDATE cases SET reopened = true WHERE jurisdiction_id = $1 AND id IN (SELECT case_id FROM case_events WHERE type = 'reopen')",
		"UPDATE cases SET deferred = true WHERE jurisdiction_id = $1 AND id IN (SELECT case_id FROM case_events WHERE type = 'defer')",
		`UPDATE cases c SET rating = CAST(e.data->>'rating' AS SMALLINT), rated_at = e.created_at FROM case_events e
		  WHERE c.jurisdiction_id = $1 AND e.case_id = c.id AND e.type IN ('rate', 'confirm') AND e.data->>'rating' IS NOT NULL`,
	} {
		if _, err := sqlDB.ExecContext(ctx, q, jurisdiction); err != nil {
			return err
		}
	}
	for _, table := range []string{"cases", "case_events"} {
		if _, err := sqlDB.ExecContext(ctx, "ANALYZE "+table); err != nil {
			return err
		}
	}
	// And the KPI rollup, which the lifecycle keeps change by change, is built from them.
	t0 := time.Now()
	if err := db.RebuildStats(ctx, jurisdiction); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nKPI rollup built in %v\n", time.Since(t0).Round(time.Millisecond))
	fmt.Fprintf(out, "seeded %d cases in %v\n", n, time.Since(start).Round(time.Second))
	return nil
}

// benchQueue times the queue queries the API runs for a handler (their department, open
// cases, by deadline) and a supervisor (the whole city), and prints their plans.
func benchQueue(ctx context.Context, db *models.DB, out io.Writer) error {
	var jurisdiction, dept string
	err := db.SQL().QueryRowContext(ctx, `SELECT jurisdiction_id, department_id FROM cases
		WHERE department_id IS NOT NULL GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1`).Scan(&jurisdiction, &dept)
	if err != nil {
		return fmt.Errorf("no seeded cases: %w", err)
	}
	var total int64
	_ = db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM cases").Scan(&total)
	fmt.Fprintf(out, "%d cases; the busiest department is %s\n", total, dept)
	now := time.Now()
	filters := []struct {
		name string
		f    models.QueueFilter
	}{
		{"handler: department, open, by deadline", models.QueueFilter{JurisdictionID: jurisdiction, DepartmentID: dept, Sort: "due", Now: now}},
		{"handler: department, open, oldest first", models.QueueFilter{JurisdictionID: jurisdiction, DepartmentID: dept, Sort: "age", Now: now}},
		{"handler: department, in progress, by priority", models.QueueFilter{JurisdictionID: jurisdiction, DepartmentID: dept, Sort: "priority", Now: now, Statuses: []models.Status{models.StatusInProgress}}},
		{"handler: department, overdue, by deadline", models.QueueFilter{JurisdictionID: jurisdiction, DepartmentID: dept, Sort: "due", Overdue: true, Now: now}},
		{"supervisor: city, open, by deadline", models.QueueFilter{JurisdictionID: jurisdiction, Sort: "due", Now: now}},
	}
	const runs = 500
	for _, fc := range filters {
		var times []time.Duration
		cursor := ""
		for i := range runs {
			f := fc.f
			f.Limit = 50
			f.Cursor = cursor
			t0 := time.Now()
			_, next, err := db.Queue(ctx, f)
			if err != nil {
				return err
			}
			times = append(times, time.Since(t0))
			cursor = next
			if i%10 == 9 || next == "" { // page ten deep, then start over
				cursor = ""
			}
		}
		fmt.Fprintf(out, "queue page of 50, %s: %s\n", fc.name, pct(times))
	}
	var times []time.Duration
	for range 100 {
		t0 := time.Now()
		if _, _, _, err := db.QueueCounts(ctx, models.QueueFilter{JurisdictionID: jurisdiction, DepartmentID: dept, Now: now}); err != nil {
			return err
		}
		times = append(times, time.Since(t0))
	}
	fmt.Fprintf(out, "tab counts, department: %s\n", pct(times))
	times = times[:0]
	for range 20 {
		t0 := time.Now()
		if _, _, _, err := db.QueueCounts(ctx, models.QueueFilter{JurisdictionID: jurisdiction, Now: now}); err != nil {
			return err
		}
		times = append(times, time.Since(t0))
	}
	fmt.Fprintf(out, "tab counts, whole city: %s\n", pct(times))
	return explain(ctx, db, jurisdiction, dept, out)
}

func pct(ds []time.Duration) string {
	slices.Sort(ds)
	p := func(q float64) time.Duration {
		return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v  p99 %v  (n=%d)", p(0.5), p(0.99), len(ds))
}

// explain prints the plans of the two queue queries, to show they use the indexes.
func explain(ctx context.Context, db *models.DB, jurisdiction, dept string, out io.Writer) error {
	queries := map[string]string{
		// The SQL models.Queue and models.QueueCounts send for a handler's queue.
		"handler queue by deadline": `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM cases WHERE jurisdiction_id = $1 AND department_id = $2
			AND status IN ('dispatched', 'triage', 'accepted', 'in_progress') AND due_at IS NOT NULL ORDER BY due_at, id LIMIT 51`,
		"department tab counts": `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT status, COUNT(*) AS n,
			SUM(CASE WHEN due_at < now() THEN 1 ELSE 0 END) AS overdue, SUM(CASE WHEN assignee_id IS NULL THEN 1 ELSE 0 END) AS unassigned
			FROM cases WHERE jurisdiction_id = $1 AND department_id = $2
			AND status IN ('submitted','dispatched','triage','accepted','in_progress','resolved') GROUP BY status`,
	}
	for _, name := range []string{"handler queue by deadline", "department tab counts"} {
		rows, err := db.SQL().QueryContext(ctx, queries[name], jurisdiction, dept)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\n-- %s\n", name)
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				rows.Close()
				return err
			}
			fmt.Fprintln(out, line)
		}
		rows.Close()
	}
	return nil
}

// benchHTTP times a handler's queue through the API, a page of 50 by deadline, paging ten
// deep and starting over, as the app would.
func benchHTTP(base, login string, out io.Writer) error {
	email, password, _ := strings.Cut(login, ":")
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var l struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&l)
	resp.Body.Close()
	if err != nil || l.Token == "" {
		return fmt.Errorf("login as %s: %v", email, err)
	}
	for _, query := range []string{"sort=due", "sort=age&unassigned=true", "overdue=true&sort=due"} {
		var times []time.Duration
		cursor := ""
		for i := range 500 {
			req, _ := http.NewRequest("GET", base+"/v1/queue?limit=50&"+query+"&cursor="+url.QueryEscape(cursor), nil)
			req.Header.Set("Authorization", "Bearer "+l.Token)
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			var page struct {
				NextCursor string `json:"next_cursor"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			times = append(times, time.Since(t0))
			if err != nil || resp.StatusCode != 200 {
				return fmt.Errorf("queue: %d %v", resp.StatusCode, err)
			}
			cursor = page.NextCursor
			if i%10 == 9 {
				cursor = ""
			}
		}
		fmt.Fprintf(out, "GET /v1/queue?%s, page of 50 over HTTP: %s\n", query, pct(times))
	}
	return nil
}

// benchStats times the KPIs of the last year, by department and by day, as the API computes
// them (models.Stats), and through the API when base is set (signed in as the demo
// supervisor).
func benchStats(ctx context.Context, db *models.DB, base string, out io.Writer) error {
	var jurisdiction string
	if err := db.SQL().QueryRowContext(ctx, "SELECT jurisdiction_id FROM cases GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").Scan(&jurisdiction); err != nil {
		return fmt.Errorf("no seeded cases: %w", err)
	}
	var total int64
	_ = db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM cases").Scan(&total)
	now := time.Now().UTC()
	from := now.AddDate(-1, 0, 0)
	fmt.Fprintf(out, "%d cases; KPIs of %s from %s to %s\n", total, jurisdiction, from.Format(time.RFC3339), now.Format(time.RFC3339))
	// The first question would build the city's rollup if it has none (a database seeded
	// before it existed): build it here, and time that apart.
	t0 := time.Now()
	if err := db.RebuildStats(ctx, jurisdiction); err != nil {
		return err
	}
	fmt.Fprintf(out, "KPI rollup built from the cases in %v\n", time.Since(t0).Round(time.Millisecond))
	token := ""
	if base != "" {
		var err error
		if token, err = loginAs(base, "supervisor@nyc.demo", "demo-supervisor"); err != nil {
			return err
		}
	}
	for _, g := range []string{models.GroupDepartment, models.GroupDay, models.GroupWeek, models.GroupCategory, models.GroupArea} {
		var times []time.Duration
		var received int64
		for range 5 {
			t0 := time.Now()
			st, err := db.Stats(ctx, models.StatsQuery{JurisdictionID: jurisdiction, From: from, To: now, GroupBy: g, Now: now})
			if err != nil {
				return err
			}
			times = append(times, time.Since(t0))
			received = st.Total.Received
		}
		fmt.Fprintf(out, "stats for a year by %-10s (%d received): %s\n", g, received, pct(times))
		if token == "" {
			continue
		}
		times = times[:0]
		for range 5 {
			req, _ := http.NewRequest("GET", base+"/v1/stats?group_by="+g+"&from="+url.QueryEscape(from.Format(time.RFC3339))+"&to="+url.QueryEscape(now.Format(time.RFC3339)), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			times = append(times, time.Since(t0))
			if resp.StatusCode != 200 {
				return fmt.Errorf("GET /v1/stats: %d", resp.StatusCode)
			}
		}
		fmt.Fprintf(out, "GET /v1/stats?group_by=%s over HTTP, a year: %s\n", g, pct(times))
	}
	return nil
}

// loginAs signs a member of staff in through the API.
func loginAs(base, email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var l struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || l.Token == "" {
		return "", fmt.Errorf("login as %s: %d %v", email, resp.StatusCode, err)
	}
	return l.Token, nil
}
