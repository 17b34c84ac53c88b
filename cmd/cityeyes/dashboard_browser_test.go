package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/paulmach/orb/planar"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

// TestDashboardInChromium loads the staff dashboard of a real `cityeyes serve` with a month
// of cases in real headless Chromium: a supervisor signs in through the form, the figures on
// the tiles and in the department table are those of GET /v1/stats for the period the page
// shows, the map has a dot for every open case, and a click on a case opens its timeline and
// photo. A case handler then sees their department's queue. Screenshots are saved under
// $CITYEYES_TEST_ARTIFACTS (or the test's temp dir).
//
// It needs Chromium: `make test` installs Debian's and sets CITYEYES_TEST_CHROMIUM; a plain
// `go test` without it skips this test.
func TestDashboardInChromium(t *testing.T) {
	chromium := os.Getenv("CITYEYES_TEST_CHROMIUM")
	if chromium == "" {
		t.Skip("CITYEYES_TEST_CHROMIUM is not set: make test sets it to Debian's chromium")
	}
	in := newInstance(t)
	// The month of history is written before the server starts, so its workers find each
	// case where the history left it (and route none of them again).
	db := testenv.OpenDB(t, in.env["CITYEYES_DATABASE_URL"])
	if err := loadDemo(context.Background(), db, io.Discard); err != nil {
		t.Fatal(err)
	}
	seeded := seedMonth(t, db, time.Now())
	in.start("serve")

	// One report made the ordinary way, with a photo, alone in its area so its dot is
	// nobody else's: the one the test clicks.
	citizen := in.device("dashboard-phone-1", "tok-dashboard")
	var r report
	form := reportForm(t, map[string]string{"category": "pothole", "description": "Deep pothole by the ferry bus stop",
		"lat": fmt.Sprint(seeded.aloneLat), "lon": fmt.Sprint(seeded.aloneLon), "attr.depth": "deep"}, testenv.PhotoJPEG)
	in.must(in.call("POST", "/v1/reports", citizen, form, &r, "Idempotency-Key", "dashboard-report-1"), 201)
	r = in.waitStatus(citizen, r.ID, "dispatched", 15*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for len(r.Photos) == 0 || r.Photos[0].Processing {
		if time.Now().After(deadline) {
			t.Fatalf("the report's photo was not processed: %+v", r.Photos)
		}
		time.Sleep(50 * time.Millisecond)
		in.must(in.call("GET", "/v1/reports/"+r.ID, citizen, nil, &r), 200)
	}

	artifacts := os.Getenv("CITYEYES_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx := browser(t, chromium)
	supervisor := in.login("supervisor@nyc.demo", "demo-supervisor")

	t.Run("supervisor", func(t *testing.T) {
		signInThroughForm(t, ctx, in.base, "supervisor@nyc.demo", "demo-supervisor")
		page := evaluate[struct {
			Mode         string        `json:"mode"`
			From         string        `json:"from"`
			To           string        `json:"to"`
			Tiles        []shownFigure `json:"tiles"`
			Rows         []shownRow    `json:"rows"`
			Dots         int           `json:"dots"`
			LateDots     int           `json:"lateDots"`
			DotSource    string        `json:"dotSource"`
			OverdueBadge string        `json:"overdueBadge"`
		}](t, ctx, `({
			mode: main.dataset.mode, from: main.dataset.from, to: main.dataset.to,
			tiles: [...document.querySelectorAll("#tiles .tile")].map(e => ({kpi: e.dataset.kpi, value: e.dataset.value, text: e.querySelector(".value").textContent})),
			rows: [...document.querySelectorAll("#departments tbody tr[data-key], #departments tfoot tr")].map(r => ({key: r.dataset.key,
				cells: Object.fromEntries([...r.querySelectorAll("td[data-kpi]")].map(c => [c.dataset.kpi, c.textContent]))})),
			dots: document.querySelectorAll("#map circle.case").length,
			lateDots: document.querySelectorAll("#map circle.case.overdue").length,
			dotSource: document.querySelector("#map").dataset.source,
			overdueBadge: document.querySelector("#overdue-count").textContent,
		})`)
		if page.Mode != "stats" {
			t.Fatalf("a supervisor's dashboard is in mode %q, want stats", page.Mode)
		}

		// The figures shown are the API's for the period shown.
		var stats struct {
			Groups []map[string]any `json:"groups"`
			Total  map[string]any   `json:"total"`
		}
		q := url.Values{"from": {page.From}, "to": {page.To}, "group_by": {"department"}}
		in.must(in.call("GET", "/v1/stats?"+q.Encode(), supervisor, nil, &stats), 200)
		if n, _ := stats.Total["received"].(float64); n < float64(seeded.cases) {
			t.Fatalf("the API counts %v received in the page's period, want at least the %d seeded", stats.Total["received"], seeded.cases)
		}
		if len(page.Tiles) < 6 {
			t.Fatalf("%d tiles shown, want the headline KPIs: %+v", len(page.Tiles), page.Tiles)
		}
		nonZero := 0
		for _, tile := range page.Tiles {
			want := stats.Total[tile.KPI]
			if !sameFigure(tile.Value, want) {
				t.Errorf("tile %s shows %s (%q), the API says %v", tile.KPI, tile.Value, tile.Text, want)
			}
			if wantText := formatted(tile.KPI, want); wantText != "" && strings.TrimSuffix(tile.Text, " / 5") != wantText {
				t.Errorf("tile %s reads %q, want %q", tile.KPI, tile.Text, wantText)
			}
			if v, ok := want.(float64); ok && v > 0 {
				nonZero++
			}
		}
		for _, kpi := range []string{"received", "closed", "backlog", "overdue", "on_time_rate", "hours_to_close_p50"} {
			if !slices.ContainsFunc(page.Tiles, func(f shownFigure) bool { return f.KPI == kpi }) {
				t.Errorf("no tile for %s", kpi)
			}
			if v, _ := stats.Total[kpi].(float64); v == 0 {
				t.Errorf("the seeded month gives %s = %v; the test wants every headline figure non-zero", kpi, stats.Total[kpi])
			}
		}
		if page.OverdueBadge != formatted("overdue", stats.Total["overdue"]) {
			t.Errorf("the overdue list's badge reads %q, the API says %v", page.OverdueBadge, stats.Total["overdue"])
		}
		byKey := map[string]map[string]any{"total": stats.Total}
		for _, g := range stats.Groups {
			byKey[g["key"].(string)] = g
		}
		// Departments without a case in the period or open are left out of the table.
		active := 0
		for _, g := range stats.Groups {
			for _, kpi := range []string{"received", "closed", "backlog", "overdue"} {
				if g[kpi].(float64) != 0 {
					active++
					break
				}
			}
		}
		if len(page.Rows) != active+1 || active < 3 {
			t.Errorf("the table has %d rows; the API has %d departments with cases, and a total", len(page.Rows), active)
		}
		for _, row := range page.Rows {
			g, ok := byKey[row.Key]
			if !ok {
				t.Errorf("the table shows department %q, which the API does not", row.Key)
				continue
			}
			for kpi, text := range row.Cells {
				if want := formatted(kpi, g[kpi]); want != "" && text != want {
					t.Errorf("department %s, %s: shows %q, want %q", row.Key, kpi, text, want)
				}
			}
		}

		// A dot for every open case: those of the export, or where there is none (yet), of
		// the work queue.
		var open struct {
			Features []json.RawMessage `json:"features"`
			Items    []json.RawMessage `json:"items"`
		}
		if page.DotSource == "export" {
			in.must(in.call("GET", "/v1/exports/cases.geojson?status=open", supervisor, nil, &open), 200)
		} else {
			in.must(in.call("GET", "/v1/queue?limit=200&status=submitted,dispatched,triage,accepted,in_progress,resolved", supervisor, nil, &open), 200)
		}
		if n := len(open.Features) + len(open.Items); page.Dots != n || page.Dots < seeded.open {
			t.Errorf("the map shows %d cases, the %s has %d open (%d seeded)", page.Dots, page.DotSource, n, seeded.open)
		}
		if float64(page.LateDots) != stats.Total["overdue"] {
			t.Errorf("the map shows %d cases overdue, the API counts %v", page.LateDots, stats.Total["overdue"])
		}
		// Readable on a laptop: nothing wider than the window.
		if w := evaluate[[]int](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
			t.Errorf("the page is %d pixels wide in a window of %d", w[0], w[1])
		}
		screenshot(t, ctx, filepath.Join(artifacts, "dashboard-supervisor.png"))
		bounded, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		full, err := chromedp.Run(bounded, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(artifacts, "dashboard-full.png"), full, 0o644); err != nil {
			t.Fatal(err)
		}

		// Clicking the report's dot opens it with its timeline and photo.
		checkCaseDrawer(t, ctx, in, supervisor, fmt.Sprintf(`#map circle[data-id=%q]`, r.ID), r.ID)
		screenshot(t, ctx, filepath.Join(artifacts, "dashboard-case.png"))

		// So does a case in the overdue list.
		first := evaluate[string](t, ctx, `document.querySelector("#list-overdue li[data-id]")?.dataset.id || ""`)
		if first == "" {
			t.Fatal("the overdue list is empty, yet the API counts overdue cases")
		}
		browse(t, ctx, chromedp.Click(chromedp.CSS("#drawer-close")), waitFor(`document.querySelector("#drawer").hidden`))
		checkCaseDrawer(t, ctx, in, supervisor, fmt.Sprintf(`#list-overdue li[data-id=%q]`, first), first)
		browse(t, ctx, chromedp.Click(chromedp.CSS("#drawer-close")), waitFor(`document.querySelector("#drawer").hidden`),
			chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
		if s := evaluate[string](t, ctx, `sessionStorage.getItem("cityeyes.session") || ""`); s != "" {
			t.Errorf("signing out left the session behind: %s", s)
		}
	})

	t.Run("handler", func(t *testing.T) {
		signInThroughForm(t, ctx, in.base, "dot@nyc.demo", "demo-dot")
		page := evaluate[struct {
			Mode  string        `json:"mode"`
			Tiles []shownFigure `json:"tiles"`
			Dots  int           `json:"dots"`
		}](t, ctx, `({mode: main.dataset.mode,
			tiles: [...document.querySelectorAll("#tiles .tile")].map(e => ({kpi: e.dataset.kpi, value: e.dataset.value, text: e.querySelector(".value").textContent})),
			dots: document.querySelectorAll("#map circle.case").length})`)
		if page.Mode != "queue" {
			t.Fatalf("a handler's dashboard is in mode %q, want queue", page.Mode)
		}
		dot := in.login("dot@nyc.demo", "demo-dot")
		var counts struct {
			Statuses   map[string]float64 `json:"statuses"`
			Overdue    float64            `json:"overdue"`
			Unassigned float64            `json:"unassigned"`
		}
		in.must(in.call("GET", "/v1/queue/counts", dot, nil, &counts), 200)
		want := map[string]any{"overdue": counts.Overdue, "unassigned": counts.Unassigned,
			"dispatched": counts.Statuses["dispatched"], "in_progress": counts.Statuses["in_progress"], "resolved": counts.Statuses["resolved"]}
		open := 0.0
		for _, n := range counts.Statuses {
			open += n
		}
		want["open"] = open
		for _, tile := range page.Tiles {
			if !sameFigure(tile.Value, want[tile.KPI]) || tile.Text != formatted("received", want[tile.KPI]) {
				t.Errorf("handler's tile %s shows %s (%q), the API says %v", tile.KPI, tile.Value, tile.Text, want[tile.KPI])
			}
		}
		if open == 0 || len(page.Tiles) != len(want) {
			t.Fatalf("DOT's queue has %v open cases and the page %d tiles", open, len(page.Tiles))
		}
		// The map shows the department's open cases.
		var queue struct {
			Items []struct{ ID string } `json:"items"`
		}
		in.must(in.call("GET", "/v1/queue?limit=200&status=submitted,dispatched,triage,accepted,in_progress,resolved", dot, nil, &queue), 200)
		if page.Dots != len(queue.Items) || float64(page.Dots) != open {
			t.Errorf("the handler's map shows %d cases, the queue has %d", page.Dots, len(queue.Items))
		}
		screenshot(t, ctx, filepath.Join(artifacts, "dashboard-handler.png"))
		if evaluate[bool](t, ctx, `!document.querySelector("#views").hidden`) {
			t.Error("a case handler is offered the Administration view")
		}
	})

	t.Run("admin", func(t *testing.T) {
		admin := in.login("admin@nyc.demo", "demo-admin")
		signInThroughForm(t, ctx, in.base, "admin@nyc.demo", "demo-admin")
		browse(t, ctx,
			chromedp.Click(chromedp.CSS("#view-admin")),
			waitFor(`document.querySelector("#admin").dataset.state === "ready" && !document.querySelector("#admin").hidden`))
		if !evaluate[bool](t, ctx, `document.querySelector("#main").hidden`) {
			t.Error("the dashboard is still shown beside the Administration view")
		}
		// The lists are the API's.
		var depts []struct{ Code, Name string }
		in.must(in.call("GET", "/v1/admin/departments", admin, nil, &depts), 200)
		var staff []struct{ ID string }
		in.must(in.call("GET", "/v1/admin/staff", admin, nil, &staff), 200)
		shown := evaluate[[]int](t, ctx, `[document.querySelectorAll("#adm-departments-list tbody tr[data-code]").length,
			document.querySelectorAll("#adm-staff-list tbody tr[data-id]").length,
			document.querySelectorAll("#adm-categories-list tbody tr[data-code]").length]`)
		var cats []map[string]any
		in.must(in.call("GET", "/v1/admin/categories", admin, nil, &cats), 200)
		if shown[0] != len(depts) || shown[1] != len(staff) || shown[2] != len(cats) || len(depts) == 0 {
			t.Errorf("the page lists %d departments, %d staff, %d categories; the API %d, %d, %d", shown[0], shown[1], shown[2], len(depts), len(staff), len(cats))
		}

		// Every member of staff but the administrator themselves can be disabled from here.
		if n := evaluate[[]int](t, ctx, `[document.querySelectorAll("#adm-staff-list tbody tr button").length,
			[...document.querySelectorAll("#adm-staff-list tbody tr")].filter(r => r.cells[0].textContent === "admin@nyc.demo" && r.querySelector("button")).length]`); n[0] != len(staff)-1 || n[1] != 0 {
			t.Errorf("the staff list has %d Disable buttons (%d on the admin's own row) for %d staff", n[0], n[1], len(staff))
		}

		// done waits for a section's message after a change, and the lists read again.
		done := func(section, state string) chromedp.Action[chromedp.Void] {
			return waitFor(fmt.Sprintf(`document.querySelector("#adm-%s .adm-msg").dataset.state === %q && document.querySelector("#admin").dataset.state === "ready"`, section, state))
		}
		msg := func(section string) string {
			return evaluate[string](t, ctx, fmt.Sprintf(`document.querySelector("#adm-%s .adm-msg").textContent`, section))
		}

		// A department added through the form is in the API's list and on the page.
		browse(t, ctx,
			chromedp.SendKeys(chromedp.CSS(`#adm-department-form input[name="code"]`), "BIKES"),
			chromedp.SendKeys(chromedp.CSS(`#adm-department-form input[name="name"]`), "Bike Lanes Office"),
			chromedp.Click(chromedp.CSS(`#adm-department-form button[type="submit"]`)),
			done("departments", "ok"),
			waitFor(`!!document.querySelector('#adm-departments-list tr[data-code="BIKES"]')`))
		in.must(in.call("GET", "/v1/admin/departments", admin, nil, &depts), 200)
		if !slices.Contains(depts, struct{ Code, Name string }{"BIKES", "Bike Lanes Office"}) {
			t.Errorf("the department added on the page is not in the API's list: %v", depts)
		}

		// A category's SLA changed on the page is the API's.
		sla := func() float64 {
			var cs []map[string]any
			in.must(in.call("GET", "/v1/admin/categories", admin, nil, &cs), 200)
			for _, c := range cs {
				if c["code"] == "pothole" {
					return c["sla_hours"].(float64)
				}
			}
			t.Fatal("no pothole category")
			return 0
		}
		setSLA := func(v string) {
			browse(t, ctx,
				chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector("#adm-categories .adm-msg").dataset.state = "";
					document.querySelector('#adm-categories-list tr[data-code="pothole"] input.sla').value = %q`, v)),
				chromedp.Click(chromedp.CSS(`#adm-categories-list tr[data-code="pothole"] button`)))
		}
		before := sla()
		want := before + 7
		setSLA(fmt.Sprint(want))
		browse(t, ctx, done("categories", "ok"))
		if got := sla(); got != want {
			t.Errorf("pothole's SLA is %v after saving %v on the page (was %v)", got, want, before)
		}

		// A negative SLA is refused: the page shows the API's detail, and nothing changed.
		setSLA("-5")
		browse(t, ctx, done("categories", "error"))
		var pothole map[string]any
		in.must(in.call("GET", "/v1/admin/categories", admin, nil, &cats), 200)
		for _, c := range cats {
			if c["code"] == "pothole" {
				pothole = c
			}
		}
		pothole["sla_hours"] = -5
		var problem struct{ Detail string }
		refused := in.call("PUT", "/v1/admin/categories/pothole", admin, pothole, nil)
		in.must(refused, 422)
		if err := json.NewDecoder(refused.Body).Decode(&problem); err != nil {
			t.Fatal(err)
		}
		if got := msg("categories"); got != problem.Detail || !strings.Contains(got, "negative") {
			t.Errorf("the page says %q about a negative SLA; the API's detail is %q", got, problem.Detail)
		}
		if got := sla(); got != want {
			t.Errorf("a refused change left pothole's SLA at %v, want %v", got, want)
		}
		if v := evaluate[string](t, ctx, `document.querySelector('#adm-categories-list tr[data-code="pothole"] input.sla').value`); v != fmt.Sprint(want) {
			t.Errorf("after the refusal the page shows SLA %q, the API %v", v, want)
		}
		if w := evaluate[[]int](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
			t.Errorf("the Administration view is %d pixels wide in a window of %d", w[0], w[1])
		}
		browse(t, ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		screenshot(t, ctx, filepath.Join(artifacts, "dashboard-admin.png"))
		bounded, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		full, err := chromedp.Run(bounded, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(artifacts, "dashboard-admin-full.png"), full, 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// shownFigure is a figure as the page shows it: the raw value it was given and its text.
type shownFigure struct {
	KPI   string `json:"kpi"`
	Value string `json:"value"`
	Text  string `json:"text"`
}

// shownRow is a row of the department table: its key and each figure's text.
type shownRow struct {
	Key   string            `json:"key"`
	Cells map[string]string `json:"cells"`
}

// sameFigure compares a value the page holds (as text) with the API's JSON value.
func sameFigure(shown string, api any) bool {
	if api == nil {
		return shown == "null"
	}
	v, ok := api.(float64)
	if !ok {
		return false
	}
	got, err := strconv.ParseFloat(shown, 64)
	return err == nil && math.Abs(got-v) < 1e-9
}

// formatted is how the page writes a figure of this kind, as a person reads it; "" for
// kinds the test does not know.
func formatted(kpi string, v any) string {
	f, ok := v.(float64)
	if v == nil {
		return "—"
	}
	if !ok {
		return ""
	}
	switch {
	case strings.HasSuffix(kpi, "_rate"):
		return fmt.Sprintf("%d%%", int(math.Round(f*100)))
	case strings.HasPrefix(kpi, "hours_"):
		if f < 48 {
			return fmt.Sprintf("%.1f h", math.Round(f*10)/10)
		}
		return fmt.Sprintf("%.1f d", math.Round(f/24*10)/10)
	case kpi == "satisfaction":
		return fmt.Sprintf("%.1f", math.Round(f*10)/10)
	}
	// A count, with thousands separated by commas.
	s := strconv.FormatInt(int64(f), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// browser starts headless Chromium with a fresh profile for this test, in a laptop's window.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // as root in a container, the sandbox cannot start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser now, so a Chromium that cannot run fails here, plainly.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// browse runs browser actions, each batch bounded so a page that never gets ready fails the
// test instead of hanging it.
func browse(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	bounded, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(bounded, actions...); err != nil {
		notice, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#notice")?.textContent || ""`))
		t.Fatalf("browser: %v (notice on the page: %q)", err, notice)
	}
}

// waitFor waits until a JavaScript expression is true in the page.
func waitFor(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))(ctx, tg)
		return chromedp.Void{}, err
	}
}

// evaluate runs JavaScript in the page and decodes its value.
func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	bounded, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(bounded, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// signInThroughForm opens the dashboard and signs in with its form, then waits for the
// figures.
func signInThroughForm(t *testing.T, ctx context.Context, base, email, password string) {
	t.Helper()
	browse(t, ctx,
		chromedp.Navigate(base+"/dashboard"),
		chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`), // whoever was signed in before
		chromedp.Navigate(base+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-email"), email),
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#main[data-state="ready"], #main[data-state="error"]`)),
	)
	if state := evaluate[string](t, ctx, `main.dataset.state`); state != "ready" {
		t.Fatalf("the dashboard did not load: %q", evaluate[string](t, ctx, `document.querySelector("#notice").textContent`))
	}
}

// checkCaseDrawer clicks sel and checks the drawer then shows case id: its number, its
// whole timeline and its photos as the API gives them, the photos loaded.
func checkCaseDrawer(t *testing.T, ctx context.Context, in *instance, token, sel, id string) {
	t.Helper()
	browse(t, ctx,
		chromedp.ScrollIntoView(chromedp.CSS(sel)),
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#drawer[data-state="ready"][data-id=%q]`, id))),
	)
	var c report
	in.must(in.call("GET", "/v1/cases/"+id, token, nil, &c), 200)
	// Give the photos a moment to load: their links are the API's signed URLs.
	browse(t, ctx, waitFor(`[...document.querySelectorAll("#case-body .photos img")].every(i => i.complete)`))
	shown := evaluate[struct {
		Title  string   `json:"title"`
		Events []string `json:"events"`
		Photos int      `json:"photos"`
		Loaded int      `json:"loaded"`
	}](t, ctx, `({
		title: document.querySelector("#case-title").textContent,
		events: [...document.querySelectorAll("#case-body .timeline li .ev")].map(e => e.textContent),
		photos: document.querySelectorAll("#case-body .photos img").length,
		loaded: [...document.querySelectorAll("#case-body .photos img")].filter(i => i.naturalWidth > 0).length,
	})`)
	if shown.Title != "Case "+c.Number {
		t.Errorf("the drawer's title is %q, want case %s", shown.Title, c.Number)
	}
	// Each event reads as its type, then (for a change of status) from → to.
	var want []string
	for _, e := range c.Timeline {
		want = append(want, strings.ReplaceAll(e.Type, "_", " "))
	}
	same := len(shown.Events) == len(want) && len(want) >= 2
	for i := 0; same && i < len(want); i++ {
		same = shown.Events[i] == want[i] || strings.HasPrefix(shown.Events[i], want[i]+": ")
	}
	if !same {
		t.Errorf("the drawer's timeline reads %q, the API's events are %q", shown.Events, want)
	}
	withURL := 0
	for _, p := range c.Photos {
		if p.URL != nil || p.ThumbnailURL != nil {
			withURL++
		}
	}
	if shown.Photos != withURL || shown.Loaded != withURL {
		t.Errorf("the drawer shows %d photos (%d loaded), the API has %d with links", shown.Photos, shown.Loaded, withURL)
	}
}

// screenshot saves the browser's window as a PNG.
func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	bounded, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(bounded, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// seededMonth is what seedMonth wrote.
type seededMonth struct {
	cases, open        int
	aloneLat, aloneLon float64 // a point in an area no seeded case is in
}

// seedMonth writes four weeks of the demo city's history through the case lifecycle, each
// change at its own time in the past: reports in many areas and categories, routed, worked
// and closed on time or late, confirmed with ratings, some reopened, some rejected as
// invalid, and some still open, a few of those past their deadline. The running server's
// workers see the outbox rows of these changes as they would any others.
func seedMonth(t *testing.T, db *models.DB, now time.Time) seededMonth {
	t.Helper()
	ctx := context.Background()
	const city = "nyc"
	idx, err := db.LoadAreaIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	areas, err := db.JurisdictionAreas(ctx, city)
	if err != nil {
		t.Fatal(err)
	}
	// A point inside each area, where its shape allows one near its centroid.
	type spot struct {
		area     string
		lat, lon float64
	}
	var spots []spot
	var alone spot
	for _, a := range areas {
		g, err := models.ParseArea(a.Geometry)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := planar.CentroidArea(g)
		if loc, ok := idx.Locate(c.Lat(), c.Lon()); ok && loc.AreaCode == a.Code {
			s := spot{a.Code, c.Lat(), c.Lon()}
			// The southernmost area (Staten Island's tip) is kept free for the test's own report.
			if alone.area == "" || s.lat < alone.lat {
				if alone.area != "" {
					spots = append(spots, alone)
				}
				alone = s
				continue
			}
			spots = append(spots, s)
		}
	}
	if len(spots) < 50 {
		t.Fatalf("only %d areas have a point near their centre", len(spots))
	}
	cats := map[string]*models.Category{}
	for _, code := range []string{"pothole", "street-light-condition", "graffiti", "dirty-conditions", "noise-residential",
		"heat-hot-water", "water-leak", "illegal-parking", "rodent", "missed-collection", "sidewalk-condition", "street-condition"} {
		c, err := db.CategoryByCode(ctx, city, code)
		if err != nil {
			t.Fatalf("category %s: %v", code, err)
		}
		if c.AfterPhoto != "required" {
			cats[code] = c
		}
	}
	codes := slices.Sorted(func(yield func(string) bool) {
		for k := range cats {
			if !yield(k) {
				return
			}
		}
	})
	staff, err := db.ListStaff(ctx, city)
	if err != nil {
		t.Fatal(err)
	}
	handlers := map[string]models.Actor{}
	for _, u := range staff {
		if u.Role == models.RoleHandler && u.DepartmentID != nil {
			id := u.ID
			handlers[*u.DepartmentID] = models.Actor{ID: &id, Role: models.RoleHandler, JurisdictionID: city, DepartmentID: *u.DepartmentID}
		}
	}
	var reporters []string
	for i := range 6 {
		u, _, err := db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: fmt.Sprintf("seeded-phone-%d", i), Platform: "android", Locale: "en"}, now.AddDate(0, -2, 0))
		if err != nil {
			t.Fatal(err)
		}
		reporters = append(reporters, u.ID)
	}

	rng := rand.New(rand.NewPCG(5, 2026))
	out := seededMonth{aloneLat: alone.lat, aloneLon: alone.lon}
	latest := now.Add(-time.Minute)
	const n = 140
	for i := range n {
		s := spots[rng.IntN(len(spots))]
		cat := cats[codes[rng.IntN(len(codes))]]
		reporter := reporters[rng.IntN(len(reporters))]
		at := now.Add(-time.Duration(rng.Float64() * 27 * 24 * float64(time.Hour)))
		lat, lon := s.lat+(rng.Float64()-0.5)*0.003, s.lon+(rng.Float64()-0.5)*0.003
		loc, ok := idx.Locate(lat, lon)
		if !ok || loc.AreaCode != s.area {
			lat, lon = s.lat, s.lon
			loc, _ = idx.Locate(lat, lon)
		}
		c, err := db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: reporter, JurisdictionID: city,
			CategoryID: cat.ID, AreaID: loc.AreaID, Description: fmt.Sprintf("Seeded report %d: %s", i+1, cat.Name),
			Lat: lat, Lon: lon}, at)
		if err != nil {
			t.Fatal(err)
		}
		out.cases++
		dept, err := db.RouteFor(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		handler := handlers[dept]
		citizen := models.Actor{ID: &reporter, Role: models.RoleCitizen}
		// step applies one change after a delay, unless that would be in the future; it
		// reports whether the case moved on.
		step := func(after time.Duration, ch models.Change) bool {
			at = at.Add(after)
			if at.After(latest) {
				return false
			}
			ch.CaseID = c.ID
			if _, _, err := db.Transition(ctx, ch, at); err != nil {
				t.Fatalf("case %d, %s: %v", i+1, ch.Action, err)
			}
			return true
		}
		hours := func(lo, hi float64) time.Duration {
			return time.Duration((lo + rng.Float64()*(hi-lo)) * float64(time.Hour))
		}
		closed := step(5*time.Minute, models.Change{Action: models.ActionRoute, Actor: models.SystemActor, DepartmentID: &dept}) &&
			func() bool {
				fate := rng.Float64()
				switch {
				case fate < 0.08: // not a real problem
					return step(hours(1, 30), models.Change{Action: models.ActionClose, Actor: handler, Resolution: models.ResolutionInvalid, Note: "Nothing found at the place"})
				case fate < 0.30: // still being worked on, or not yet looked at
					if rng.IntN(3) > 0 {
						_ = step(hours(1, 48), models.Change{Action: models.ActionAccept, Actor: handler}) &&
							step(hours(1, 72), models.Change{Action: models.ActionStart, Actor: handler})
					}
					return false
				}
				ok := step(hours(0.5, 12), models.Change{Action: models.ActionAccept, Actor: handler}) &&
					step(hours(1, 24), models.Change{Action: models.ActionStart, Actor: handler}) &&
					step(hours(1, 60), models.Change{Action: models.ActionResolve, Actor: handler, Note: "Fixed", Public: true})
				if ok && fate > 0.92 { // the reporter says it is not fixed
					ok = step(hours(2, 24), models.Change{Action: models.ActionReopen, Actor: citizen, Note: "Still there"}) &&
						step(hours(1, 24), models.Change{Action: models.ActionAccept, Actor: handler}) &&
						step(hours(2, 72), models.Change{Action: models.ActionResolve, Actor: handler, Note: "Fixed again", Public: true})
				}
				return ok && step(hours(1, 36), models.Change{Action: models.ActionConfirm, Actor: citizen, Rating: 2 + rng.IntN(4)})
			}()
		if !closed {
			cur, err := db.Case(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if models.IsOpen(cur.Status) && cur.Status != models.StatusResolved {
				out.open++
			}
		}
	}
	return out
}
