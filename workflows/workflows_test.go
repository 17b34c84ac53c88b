package workflows_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	_ "image/jpeg"
	"io"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/notifications"
	"github.com/city-eyes/cityeyes/notifications/fcmfake"
	"github.com/city-eyes/cityeyes/workflows"
)

var ctx = context.Background()

type fixture struct {
	db     *models.DB
	redis  asynq.RedisConnOpt
	fcm    *fcmfake.Server
	worker *workflows.Worker
	now    time.Time
	caseID string
}

// newFixture makes a test city with one submitted case from a citizen with one device.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{db: testenv.DB(t), redis: testenv.Redis(t), fcm: fcmfake.New(), now: time.Now()}
	t.Cleanup(f.fcm.Close)
	testenv.City(t, f.db)
	push, err := notifications.NewFCM(ctx, notifications.FCMConfig{ProjectID: "p", Endpoint: f.fcm.URL()})
	if err != nil {
		t.Fatal(err)
	}
	f.worker = workflows.New(workflows.Config{DB: f.db, Redis: f.redis, Push: push, Now: func() time.Time { return f.now }, Lease: time.Minute})
	u, _, err := f.db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "wf-device-1", Platform: "ios", PushToken: "tok-wf", Locale: "zh-CN"}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := f.db.LoadAreaIndex(ctx)
	loc, _ := idx.Locate(testenv.WestLat, testenv.WestLon)
	cat, _ := f.db.CategoryByCode(ctx, "testville", "tree")
	c, err := f.db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: u.ID, JurisdictionID: "testville",
		CategoryID: cat.ID, AreaID: loc.AreaID, Description: "tree down", Lat: testenv.WestLat, Lon: testenv.WestLon}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	f.caseID = c.ID
	return f
}

// pending returns the outbox rows due now as the tasks the relay would enqueue, leaving
// out the case timers (tested in models and below).
func (f *fixture) pending(t *testing.T) []*asynq.Task {
	t.Helper()
	var tasks []*asynq.Task
	_, err := f.db.ClaimOutbox(ctx, f.now.Add(time.Hour), 100, time.Minute, func(o models.Outbox) error {
		if o.TaskType != models.TaskTimer {
			tasks = append(tasks, asynq.NewTask(o.TaskType, []byte(o.Payload)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

// TestTasksRunTwiceDoOnce runs every task twice, as a retry or a second hand-over would:
// the case is routed once and each public event is pushed once.
func TestTasksRunTwiceDoOnce(t *testing.T) {
	f := newFixture(t)
	mux := f.worker.Mux()
	route := f.pending(t)
	if len(route) != 1 || route[0].Type() != models.TaskRoute {
		t.Fatalf("outbox: %v", route)
	}
	for range 2 {
		if err := mux.ProcessTask(ctx, route[0]); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := f.db.Case(ctx, f.caseID)
	if c.Status != models.StatusDispatched || c.Version != 2 {
		t.Fatalf("after routing twice: %s v%d", c.Status, c.Version)
	}
	notify := f.pending(t)
	if len(notify) != 1 || notify[0].Type() != models.TaskNotify {
		t.Fatalf("outbox after routing: %v", notify)
	}
	for range 2 {
		if err := mux.ProcessTask(ctx, notify[0]); err != nil {
			t.Fatal(err)
		}
	}
	msgs := f.fcm.Messages()
	if len(msgs) != 1 {
		t.Fatalf("FCM got %d pushes, want 1", len(msgs))
	}
	m := msgs[0]
	var p models.NotifyPayload
	_ = json.Unmarshal(notify[0].Payload(), &p)
	if m.Token != "tok-wf" || m.Data["report_id"] != f.caseID || m.Data["status"] != "dispatched" || m.Data["event_id"] == "" {
		t.Fatalf("push %+v", m)
	}
	title, body := notifications.Text("zh-CN", "dispatched", "", c.Number)
	if m.Title != title || m.Body != body {
		t.Fatalf("push text %q / %q, want the device's locale: %q / %q", m.Title, m.Body, title, body)
	}
	if rest := f.pending(t); len(rest) != 0 {
		t.Fatalf("outbox rows left undone: %v", rest)
	}
}

// TestPushFailureIsRetriedWithoutDuplicates: FCM is down for the first attempt; the task
// fails (Asynq retries it) and the retry pushes once.
func TestPushFailureIsRetriedWithoutDuplicates(t *testing.T) {
	f := newFixture(t)
	mux := f.worker.Mux()
	if err := mux.ProcessTask(ctx, f.pending(t)[0]); err != nil {
		t.Fatal(err)
	}
	notify := f.pending(t)[0]
	f.fcm.FailNext(5) // firebase-admin itself retries 4 times
	if err := mux.ProcessTask(ctx, notify); err == nil {
		t.Fatal("the task succeeded while FCM was down; it must fail so that it is retried")
	}
	if err := mux.ProcessTask(ctx, notify); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fcm.Messages()); n != 1 {
		t.Fatalf("FCM got %d pushes, want 1", n)
	}
}

// TestRelayHandsOverAgainAfterRedisLoss: the relay enqueues with the outbox id as task id
// (a second enqueue is a no-op), and when Redis loses the task, hands it over again after
// the lease.
func TestRelayHandsOverAgainAfterRedisLoss(t *testing.T) {
	f := newFixture(t)
	insp := asynq.NewInspector(f.redis)
	defer insp.Close()
	if n, err := f.worker.RelayOnce(ctx); err != nil || n != 1 {
		t.Fatalf("relay: %d, %v", n, err)
	}
	tasks, err := insp.ListPendingTasks("default")
	if err != nil || len(tasks) != 1 || tasks[0].Type != models.TaskRoute {
		t.Fatalf("pending tasks %v, %v", tasks, err)
	}
	id := tasks[0].ID
	if n, _ := f.worker.RelayOnce(ctx); n != 0 {
		t.Fatalf("relay handed over %d rows again within the lease", n)
	}
	if err := insp.DeleteTask("default", id); err != nil { // Redis loses the task
		t.Fatal(err)
	}
	f.now = f.now.Add(2 * time.Minute)
	if n, err := f.worker.RelayOnce(ctx); err != nil || n != 1 {
		t.Fatalf("relay after the lease: %d, %v", n, err)
	}
	tasks, _ = insp.ListPendingTasks("default")
	if len(tasks) != 1 || tasks[0].ID != id {
		t.Fatalf("after redelivery: %v, want the same task id %s", tasks, id)
	}
	// Handed over once more while still queued: the task id makes it a no-op.
	f.now = f.now.Add(2 * time.Minute)
	if _, err := f.worker.RelayOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if tasks, _ = insp.ListPendingTasks("default"); len(tasks) != 1 {
		t.Fatalf("%d pending tasks, want 1", len(tasks))
	}
}

// TestTimerForAFinishedCaseDoesNothing: the breach timer of a case that was closed before
// its deadline fires, finds the case done, and only marks itself done.
func TestTimerForAFinishedCaseDoesNothing(t *testing.T) {
	f := newFixture(t)
	mux := f.worker.Mux()
	if err := mux.ProcessTask(ctx, f.pending(t)[0]); err != nil { // route
		t.Fatal(err)
	}
	var breach *asynq.Task
	var breachID string
	_, err := f.db.ClaimOutbox(ctx, f.now.Add(time.Hour), 100, time.Minute, func(o models.Outbox) error {
		var p models.TimerPayload
		if o.TaskType == models.TaskTimer && json.Unmarshal([]byte(o.Payload), &p) == nil && p.Kind == models.TimerBreach {
			breach, breachID = asynq.NewTask(o.TaskType, []byte(o.Payload)), o.ID
		}
		return nil
	})
	if err != nil || breach == nil {
		t.Fatalf("no breach timer: %v", err)
	}
	boss, _ := f.db.StaffByEmail(ctx, "boss@test.example")
	jur := "testville"
	if _, _, err := f.db.Transition(ctx, models.Change{CaseID: f.caseID, Action: models.ActionClose, Resolution: models.ResolutionInvalid,
		Actor: models.Actor{ID: &boss.ID, Role: models.RoleSupervisor, JurisdictionID: jur}}, f.now); err != nil {
		t.Fatal(err)
	}
	before, _ := f.db.Timeline(ctx, f.caseID, false)
	f.now = f.now.Add(1000 * time.Hour)
	if err := mux.ProcessTask(ctx, breach); err != nil {
		t.Fatal(err)
	}
	after, _ := f.db.Timeline(ctx, f.caseID, false)
	if len(after) != len(before) {
		t.Fatalf("the timer of a closed case added %d events", len(after)-len(before))
	}
	if done, _ := f.db.OutboxDone(ctx, breachID); !done {
		t.Fatal("the stale timer's outbox row is not done")
	}
}

// TestEscalationIsPushedToSupervisors: a supervisor who registered a phone gets the
// escalation of an overdue case as a push, in their language.
func TestEscalationIsPushedToSupervisors(t *testing.T) {
	f := newFixture(t)
	boss, _ := f.db.StaffByEmail(ctx, "boss@test.example")
	if _, err := f.db.SetDevice(ctx, boss.ID, models.DeviceRegistration{DeviceID: "boss-phone-1", Platform: "android", PushToken: "tok-boss", Locale: "zh-CN"}, f.now); err != nil {
		t.Fatal(err)
	}
	mux := f.worker.Mux()
	if err := mux.ProcessTask(ctx, f.pending(t)[0]); err != nil { // route
		t.Fatal(err)
	}
	var breach *asynq.Task
	_, _ = f.db.ClaimOutbox(ctx, f.now.Add(time.Hour), 100, time.Minute, func(o models.Outbox) error {
		var p models.TimerPayload
		if o.TaskType == models.TaskTimer && json.Unmarshal([]byte(o.Payload), &p) == nil && p.Kind == models.TimerBreach {
			breach = asynq.NewTask(o.TaskType, []byte(o.Payload))
		}
		return nil
	})
	f.now = f.now.Add(25 * time.Hour) // a fallen tree has 24 h
	if err := mux.ProcessTask(ctx, breach); err != nil {
		t.Fatal(err)
	}
	for _, task := range f.pending(t) { // the notifications of the escalation
		if err := mux.ProcessTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := f.db.Case(ctx, f.caseID)
	title, body, _ := notifications.StaffText("zh-CN", "escalate", c.Number)
	for _, m := range f.fcm.Messages() {
		if m.Token == "tok-boss" && m.Title == title && m.Body == body && m.Data["report_id"] == f.caseID {
			return
		}
	}
	t.Fatalf("no escalation push to the supervisor: %+v", f.fcm.Messages())
}

// TestPhotoVersions: a photo with EXIF orientation 6 (shot with the phone turned) gets
// display and thumbnail versions that are upright and carry no EXIF.
func TestPhotoVersions(t *testing.T) {
	f := newFixture(t)
	store, _ := testenv.Store(t, "http://cityeyes.test")
	f.worker = workflows.New(workflows.Config{DB: f.db, Redis: f.redis, Store: store, Now: func() time.Time { return f.now }, Lease: time.Minute})
	// The landscape-encoded original (its pixels are wider than high) must come out portrait.
	orig, _, err := image.DecodeConfig(bytes.NewReader(testenv.PhotoPortrait6))
	if err != nil || orig.Width <= orig.Height {
		t.Fatalf("test photo: %v %dx%d", err, orig.Width, orig.Height)
	}
	key := "cases/" + f.caseID + "/photo-1.jpg"
	if _, err := store.Put(ctx, key, bytes.NewReader(testenv.PhotoPortrait6), int64(len(testenv.PhotoPortrait6)), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	c, _ := f.db.Case(ctx, f.caseID)
	m := models.Media{ID: models.NewID(), OwnerID: c.ReporterID, Kind: models.MediaAfter, ObjectKey: key, ContentType: "image/jpeg",
		Size: int64(len(testenv.PhotoPortrait6)), Width: orig.Width, Height: orig.Height, SHA256: "x"}
	boss, _ := f.db.StaffByEmail(ctx, "boss@test.example")
	if _, _, err := f.db.Transition(ctx, models.Change{CaseID: f.caseID, Action: models.ActionComment, Note: "photo", Media: []models.Media{m},
		Actor: models.Actor{ID: &boss.ID, Role: models.RoleSupervisor, JurisdictionID: "testville"}}, f.now); err != nil {
		t.Fatal(err)
	}
	var task *asynq.Task
	_, _ = f.db.ClaimOutbox(ctx, f.now.Add(time.Hour), 100, time.Minute, func(o models.Outbox) error {
		if o.TaskType == models.TaskPhoto {
			task = asynq.NewTask(o.TaskType, []byte(o.Payload))
		}
		return nil
	})
	if task == nil {
		t.Fatal("no photo task")
	}
	for range 2 { // a repeated run changes nothing
		if err := f.worker.Mux().ProcessTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := f.db.MediaByID(ctx, m.ID)
	if got.DisplayKey == nil || got.ThumbKey == nil || got.ProcessError != "" {
		t.Fatalf("media after processing: %+v", got)
	}
	for _, k := range []string{*got.DisplayKey, *got.ThumbKey} {
		rc, _, err := store.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Height <= cfg.Width {
			t.Fatalf("%s: %v %dx%d, want portrait", k, err, cfg.Width, cfg.Height)
		}
		if bytes.Contains(b, []byte("Exif")) {
			t.Fatalf("%s still carries EXIF", k)
		}
		if max(cfg.Width, cfg.Height) > 1600 {
			t.Fatalf("%s is %dx%d", k, cfg.Width, cfg.Height)
		}
	}
}
