package workflows_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
	"github.com/city-eyes/cityeyes/workflows"
)

// retentionCityYAML is the test city keeping originals 30 days and closed cases' personal
// data 90 days, with a free-text question on "other".
var retentionCityYAML = strings.Replace(testenv.CityYAML, "{code: other, name: Something else, group: Other}",
	`{code: other, name: Something else, group: Other, attributes: [
      {code: note, datatype: text, required: false, description: "Anything else?"},
      {code: size, datatype: singlevaluelist, required: false, description: "How big?", values: [{key: big, name: Big}]}]}`, 1) +
	"retention: {originals_days: 30, closed_personal_days: 90}\n"

// retentionScene is a city with cases of every age and state, a worker whose clock the test
// moves, and the object store the photos are in.
type retentionScene struct {
	db     *models.DB
	store  storage.Store
	worker *workflows.Worker
	mux    *asynq.ServeMux
	now    time.Time
	boss   models.Actor
}

func newRetentionScene(t *testing.T) *retentionScene {
	t.Helper()
	sc := &retentionScene{db: testenv.DB(t), now: time.Now().UTC().AddDate(0, 0, -400)}
	sc.store, _ = testenv.Store(t, "http://cityeyes.test")
	testenv.Apply(t, sc.db, retentionCityYAML)
	sc.worker = workflows.New(workflows.Config{DB: sc.db, Redis: testenv.Redis(t), Store: sc.store, Now: func() time.Time { return sc.now }, Lease: time.Minute})
	sc.mux = sc.worker.Mux()
	boss, err := sc.db.StaffByEmail(ctx, "boss@test.example")
	if err != nil {
		t.Fatal(err)
	}
	sc.boss = models.Actor{ID: &boss.ID, Role: models.RoleSupervisor, JurisdictionID: "testville"}
	return sc
}

// report files a case at the scene's time, with a photo when asked, and routes it.
func (sc *retentionScene) report(t *testing.T, reporter, category, desc string, attrs map[string]any, withPhoto bool) *models.Case {
	t.Helper()
	cat, err := sc.db.CategoryByCode(ctx, "testville", category)
	if err != nil {
		t.Fatal(err)
	}
	id := models.NewID()
	nc := models.NewCase{ID: id, ReporterID: reporter, JurisdictionID: "testville", CategoryID: cat.ID,
		Description: desc, Address: desc + "-street", Lat: testenv.WestLat, Lon: testenv.WestLon, Attributes: attrs,
		IdempotencyKey: desc + "-key", Fingerprint: "fp"}
	if withPhoto {
		mid := models.NewID()
		key := "cases/" + id + "/" + mid + ".jpg"
		obj, err := sc.store.Put(ctx, key, bytes.NewReader(testenv.PhotoJPEG), int64(len(testenv.PhotoJPEG)), "image/jpeg")
		if err != nil {
			t.Fatal(err)
		}
		nc.Media = []models.Media{{ID: mid, OwnerID: reporter, Kind: models.MediaBefore, ObjectKey: key, ContentType: "image/jpeg",
			Size: obj.Size, Width: 640, Height: 480, SHA256: "x"}}
	}
	c, err := sc.db.CreateCase(ctx, nc, sc.now)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runTasks runs every outbox task due (routing, notifications, photos) as the workers would.
func (sc *retentionScene) runTasks(t *testing.T, skipPhotos bool) {
	t.Helper()
	var tasks []*asynq.Task
	_, err := sc.db.ClaimOutbox(ctx, sc.now, 1000, time.Minute, func(o models.Outbox) error {
		if o.TaskType != models.TaskTimer && !(skipPhotos && o.TaskType == models.TaskPhoto) {
			tasks = append(tasks, asynq.NewTask(o.TaskType, []byte(o.Payload)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if err := sc.mux.ProcessTask(ctx, task); err != nil {
			t.Fatalf("%s: %v", task.Type(), err)
		}
	}
}

func (sc *retentionScene) act(t *testing.T, ch models.Change) {
	t.Helper()
	if _, _, err := sc.db.Transition(ctx, ch, sc.now); err != nil {
		t.Fatalf("%s: %v", ch.Action, err)
	}
}

// retention runs the periodic task at the scene's time.
func (sc *retentionScene) retention(t *testing.T) {
	t.Helper()
	if err := sc.mux.ProcessTask(ctx, asynq.NewTask(workflows.TaskRetention, nil)); err != nil {
		t.Fatal(err)
	}
}

func (sc *retentionScene) originalKept(t *testing.T, caseID string) bool {
	t.Helper()
	ms, err := sc.db.CaseMedia(ctx, caseID)
	if err != nil || len(ms) != 1 {
		t.Fatalf("media of %s: %v %v", caseID, ms, err)
	}
	_, err = sc.store.Stat(ctx, ms[0].ObjectKey)
	switch {
	case err == nil && ms[0].OriginalDeletedAt == nil:
		return true
	case errors.Is(err, storage.ErrNotFound) && ms[0].OriginalDeletedAt != nil:
		for _, k := range []*string{ms[0].DisplayKey, ms[0].ThumbKey} {
			if k == nil {
				t.Fatalf("case %s: the original went before its versions existed", caseID)
			}
			if _, err := sc.store.Stat(ctx, *k); err != nil {
				t.Fatalf("case %s: the version %s went with the original: %v", caseID, *k, err)
			}
		}
		return false
	}
	t.Fatalf("case %s: the original's row (deleted at %v) and the %s store (%v) disagree", caseID, ms[0].OriginalDeletedAt, testenv.Name(), err)
	return false
}

// TestRetention runs the retention task on a city with a controlled clock: originals older
// than the city's period leave the object store (the stripped versions stay, and a photo not
// yet processed keeps its original), closed cases past their period lose every personal
// field (a walk of the whole database finds none of their markers), open and recent cases
// keep theirs, counts stay right, and a second run changes nothing.
func TestRetention(t *testing.T) {
	sc := newRetentionScene(t)
	alice, _, err := sc.db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "device-alice-0001", Platform: "ios", PushToken: "tok-alice"}, sc.now)
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := sc.db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "device-bob-0001", Platform: "ios"}, sc.now)
	if err != nil {
		t.Fatal(err)
	}
	// 400 days ago: Alice reports two problems, one of which is closed the day after and
	// rated; someone reports through an Open311 client with contact details, Bob says "me
	// too", the reporter comments through the client, and it is closed two days later.
	closedA := sc.report(t, alice.ID, "other", "OLD-A-words", map[string]any{"note": "OLD-A-answer", "size": "big"}, true)
	openC := sc.report(t, alice.ID, "pothole", "open-C-words", map[string]any{"depth": "deep"}, true)
	o311, err := sc.db.EnsureOpen311Reporter(ctx, models.ReporterDetails{Email: "old-b-person@example.org", FirstName: "OLD-B-first",
		LastName: "OLD-B-last", Phone: "OLD-B-phone"}, sc.now)
	if err != nil {
		t.Fatal(err)
	}
	closedB := sc.report(t, o311.ID, "pothole", "OLD-B-words", map[string]any{"depth": "deep"}, false)
	if err := sc.db.SaveOpen311Request(ctx, &models.Open311Request{CaseID: closedB.ID, Client: "Test client",
		AccountID: "OLD-B-account", DeviceID: "OLD-B-device", Located: true, CreatedAt: sc.now}); err != nil {
		t.Fatal(err)
	}
	sc.runTasks(t, false) // routed, told, photos processed
	if _, _, err := sc.db.Support(ctx, closedB.ID, bob.ID, sc.now); err != nil {
		t.Fatal(err)
	}
	sc.act(t, models.Change{CaseID: closedB.ID, Action: models.ActionComment, Public: true, Note: "OLD-B-update",
		Actor: models.Actor{ID: &o311.ID, Role: models.RoleSystem, JurisdictionID: "testville"}})
	sc.now = sc.now.Add(24 * time.Hour)
	sc.act(t, models.Change{CaseID: closedA.ID, Action: models.ActionClose, Resolution: models.ResolutionNoAction, Actor: sc.boss})
	sc.act(t, models.Change{CaseID: closedA.ID, Action: models.ActionRate, Rating: 2, Note: "OLD-A-comment",
		Actor: models.Actor{ID: &alice.ID, Role: models.RoleCitizen}})
	sc.now = sc.now.Add(24 * time.Hour)
	sc.act(t, models.Change{CaseID: closedB.ID, Action: models.ActionClose, Resolution: models.ResolutionNoAction, Actor: sc.boss})
	sc.runTasks(t, false)
	// 20 days ago: a case closed 10 days ago, and a photo the photo task has not got to yet.
	sc.now = time.Now().UTC().AddDate(0, 0, -20)
	recentD := sc.report(t, bob.ID, "other", "recent-D-words", map[string]any{"note": "recent-D-answer"}, true)
	sc.runTasks(t, false)
	sc.now = sc.now.AddDate(0, 0, 10)
	sc.act(t, models.Change{CaseID: recentD.ID, Action: models.ActionClose, Resolution: models.ResolutionNoAction, Actor: sc.boss})
	sc.now = time.Now().UTC().AddDate(0, 0, -100)
	stuckE := sc.report(t, bob.ID, "pothole", "stuck-E-words", map[string]any{"depth": "deep"}, true)
	sc.runTasks(t, true)

	sc.now = time.Now().UTC()
	oldMarkers := []string{"OLD-A", "OLD-B", "old-b-person@example.org", o311.ID}
	if before := testenv.PersonalLeft(t, sc.db.SQL(), oldMarkers, nil); len(before) < 10 {
		t.Fatalf("the walk finds too little before retention: %v", before)
	}
	sc.retention(t)

	// The closed cases past their period hold nothing personal any more, anywhere.
	if left := testenv.PersonalLeft(t, sc.db.SQL(), oldMarkers, func(table, col string) bool { return table == "users" && col == "id" }); len(left) > 0 {
		t.Fatalf("personal data left after retention:\n%s", strings.Join(left, "\n"))
	}
	for _, id := range []string{closedA.ID, closedB.ID} {
		c, err := sc.db.Case(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.ReporterID != models.TombstoneID || c.AnonymisedAt == nil || c.Status != models.StatusClosed || c.Resolution != models.ResolutionNoAction {
			t.Fatalf("case %s after retention: %+v", c.Number, c)
		}
	}
	var answers map[string]any
	if a, _ := sc.db.Case(ctx, closedA.ID); json.Unmarshal([]byte(a.Attributes), &answers) != nil || len(answers) != 1 || answers["size"] != "big" {
		t.Fatalf("answers kept: %s, want the list answer only", a.Attributes)
	}
	if b, _ := sc.db.Case(ctx, closedB.ID); b.Supporters != 1 {
		t.Fatalf("the count of supporters changed: %d", b.Supporters)
	}
	if sc.originalKept(t, closedA.ID) || sc.originalKept(t, openC.ID) {
		t.Fatal("an original older than 30 days is still kept")
	}
	if !sc.originalKept(t, recentD.ID) || !sc.originalKept(t, stuckE.ID) {
		t.Fatal("a recent original, or one not processed yet, was deleted")
	}
	// Open and recently closed cases keep their personal data; so does Alice, who still has
	// an open case.
	keptMarkers := []string{"open-C-words", "recent-D-words", "recent-D-answer", "stuck-E-words", "device-alice", "tok-alice"}
	found := strings.Join(testenv.PersonalLeft(t, sc.db.SQL(), keptMarkers, nil), "\n")
	for _, m := range keptMarkers {
		if !strings.Contains(found, m) {
			t.Fatalf("%s went, and should have stayed: %s", m, found)
		}
	}
	if c, _ := sc.db.Case(ctx, openC.ID); c.ReporterID != alice.ID {
		t.Fatal("an open case lost its reporter")
	}

	// Again: nothing changes.
	snapshot := strings.Join(testenv.PersonalLeft(t, sc.db.SQL(), append(keptMarkers, models.TombstoneID), nil), "\n")
	sc.retention(t)
	if again := strings.Join(testenv.PersonalLeft(t, sc.db.SQL(), append(keptMarkers, models.TombstoneID), nil), "\n"); again != snapshot {
		t.Fatalf("a second run changed things:\n%s\nthen\n%s", snapshot, again)
	}

	// 90 days on, the case closed 10 days ago is past its period too; the stuck photo is
	// processed and its original goes at the next run.
	sc.now = sc.now.AddDate(0, 0, 85)
	sc.runTasks(t, false)
	sc.retention(t)
	if d, _ := sc.db.Case(ctx, recentD.ID); d.AnonymisedAt == nil || d.Description != "" || d.ReporterID != models.TombstoneID {
		t.Fatalf("the later case after its period: %+v", d)
	}
	if sc.originalKept(t, recentD.ID) || sc.originalKept(t, stuckE.ID) {
		t.Fatal("originals past their period are still kept")
	}
}

// TestRetentionFinishesAnErasure: a citizen who deletes their data while a photo of theirs
// is still being processed keeps no original of it once the photo task has made its
// versions and the retention task has run.
func TestRetentionFinishesAnErasure(t *testing.T) {
	sc := newRetentionScene(t)
	sc.now = time.Now().UTC()
	u, _, err := sc.db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "device-erase-0001", Platform: "android"}, sc.now)
	if err != nil {
		t.Fatal(err)
	}
	c := sc.report(t, u.ID, "pothole", "hole", map[string]any{"depth": "deep"}, true)
	sc.runTasks(t, true) // routed; the photo task has not run
	if _, err := sc.db.EraseCitizen(ctx, u.ID, sc.store.Delete, sc.now); err != nil {
		t.Fatal(err)
	}
	if !sc.originalKept(t, c.ID) {
		t.Fatal("the original went before the photo task could make its versions")
	}
	sc.retention(t) // not processed yet: kept
	if !sc.originalKept(t, c.ID) {
		t.Fatal("the retention run deleted an original before its versions existed")
	}
	sc.now = sc.now.Add(2 * time.Minute) // past the lease of the photo task's row skipped above
	sc.runTasks(t, false)
	sc.retention(t)
	if sc.originalKept(t, c.ID) {
		t.Fatal("the erased citizen's original is still kept after processing and a retention run")
	}
}
