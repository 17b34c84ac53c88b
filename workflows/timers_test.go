package workflows_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/models"
)

// TestTimersAcrossAClockJump: a deadline timer the queue runs before its time by the
// worker's clock (clocks that differ, or one that jumped back) is not lost; after the clock
// jumps forward past the deadline the relay hands it over again, and it escalates the case
// once although two workers hold it at once (the first was killed holding it, its lease
// ran out and the queue gave it to another) and the killed worker's run is recovered and
// run again after it committed.
func TestTimersAcrossAClockJump(t *testing.T) {
	f := newFixture(t)
	mux := f.worker.Mux()
	if err := mux.ProcessTask(ctx, f.pending(t)[0]); err != nil { // route
		t.Fatal(err)
	}
	lease := time.Minute
	breachOf := func(at time.Time) (*asynq.Task, string) {
		var task *asynq.Task
		var id string
		_, err := f.db.ClaimOutbox(ctx, at, 100, lease, func(o models.Outbox) error {
			var p models.TimerPayload
			if o.TaskType == models.TaskTimer && json.Unmarshal([]byte(o.Payload), &p) == nil && p.Kind == models.TimerBreach {
				task, id = asynq.NewTask(o.TaskType, []byte(o.Payload)), o.ID
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return task, id
	}
	breach, id := breachOf(f.now)
	if breach == nil {
		t.Fatal("routing set no breach timer")
	}
	c, _ := f.db.Case(ctx, f.caseID)
	due := *c.DueAt
	escalations := func() int {
		tl, err := f.db.Timeline(ctx, f.caseID, false)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range tl {
			if e.Type == models.ActionEscalate {
				n++
			}
		}
		return n
	}

	// The queue runs the breach two hours early by the worker's clock.
	f.now = due.Add(-2 * time.Hour)
	if err := mux.ProcessTask(ctx, breach); err != nil {
		t.Fatal(err)
	}
	if done, _ := f.db.OutboxDone(ctx, id); done || escalations() != 0 {
		t.Fatalf("an early breach: outbox row done %v, %d escalations; want it still due and none", done, escalations())
	}
	// Before its lease past the deadline is over, the relay leaves it alone.
	if again, _ := breachOf(due.Add(lease / 2)); again != nil {
		t.Fatal("the relay handed the breach over again within its lease")
	}

	// The clock jumps three hours forward: the relay hands the timer over again.
	f.now = due.Add(3 * time.Hour)
	again, againID := breachOf(f.now)
	if again == nil || againID != id {
		t.Fatal("after the jump the relay did not hand the breach over again")
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 { // two workers hold it at once
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = mux.ProcessTask(ctx, again) }()
	}
	wg.Wait()
	// One of them may have lost the race on the case's version: the queue retries it.
	for _, err := range errs {
		if err != nil {
			if err := mux.ProcessTask(ctx, again); err != nil {
				t.Fatalf("the retry of the breach: %v", err)
			}
		}
	}
	if err := mux.ProcessTask(ctx, breach); err != nil { // the killed worker's run, recovered
		t.Fatal(err)
	}
	if n := escalations(); n != 1 {
		t.Fatalf("%d escalations, want exactly 1", n)
	}
	if done, _ := f.db.OutboxDone(ctx, id); !done {
		t.Fatal("the breach's outbox row is not done after it fired")
	}
	after, _ := f.db.Case(ctx, f.caseID)
	if after.EscalationLevel != 1 {
		t.Fatalf("escalation level %d, want 1", after.EscalationLevel)
	}
}
