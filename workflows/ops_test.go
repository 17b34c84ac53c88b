package workflows_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/city-eyes/cityeyes/models"
)

// gauge reads one series from reg; ok is false when it is not there.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.Metric {
			have := map[string]string{}
			for _, l := range m.Label {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// TestMetricsFollowTheCase: the workers' metrics move with a case: routed (a dispatched
// case, a route task, a push), then its deadline breached (an SLA breach, an overdue case, a
// timer task), and a task that cannot be read is counted as given up.
func TestMetricsFollowTheCase(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	if err := f.worker.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	type want struct {
		name   string
		labels map[string]string
		value  float64
	}
	check := func(step string, ws ...want) {
		t.Helper()
		for _, w := range ws {
			if v, ok := gauge(t, reg, w.name, w.labels); !ok || v != w.value {
				t.Errorf("%s: %s%v = %v (present %v), want %v", step, w.name, w.labels, v, ok, w.value)
			}
		}
	}
	city := map[string]string{"jurisdiction": "testville"}
	check("submitted",
		want{"cityeyes_cases", map[string]string{"jurisdiction": "testville", "status": "submitted"}, 1},
		want{"cityeyes_cases", map[string]string{"jurisdiction": "testville", "status": "dispatched"}, 0},
		want{"cityeyes_outbox_backlog", nil, 1}, // the route task
		want{"cityeyes_sla_breaches_total", nil, 0},
		want{"cityeyes_pushes_total", map[string]string{"result": "sent"}, 0},
		want{"cityeyes_stats_changes_waiting", nil, 1}) // the submission's facts

	mux := f.worker.Mux()
	if err := mux.ProcessTask(ctx, f.pending(t)[0]); err != nil { // route
		t.Fatal(err)
	}
	for _, task := range f.pending(t) { // the dispatch's notification
		if err := mux.ProcessTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	f.now = f.now.Add(time.Minute) // past the metrics' refresh
	check("routed",
		want{"cityeyes_cases", map[string]string{"jurisdiction": "testville", "status": "dispatched"}, 1},
		want{"cityeyes_cases", map[string]string{"jurisdiction": "testville", "status": "submitted"}, 0},
		want{"cityeyes_cases_overdue", city, 0},
		want{"cityeyes_task_duration_seconds", map[string]string{"type": models.TaskRoute, "result": "ok"}, 1},
		want{"cityeyes_pushes_total", map[string]string{"result": "sent"}, 1},
		want{"cityeyes_stats_changes_waiting", nil, 3}) // and the route's, before and after
	if err := f.worker.KeepStats(ctx); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	check("folded", want{"cityeyes_stats_changes_waiting", nil, 0})

	var breach *asynq.Task
	_, _ = f.db.ClaimOutbox(ctx, f.now.Add(48*time.Hour), 100, time.Minute, func(o models.Outbox) error {
		var p models.TimerPayload
		if o.TaskType == models.TaskTimer && json.Unmarshal([]byte(o.Payload), &p) == nil && p.Kind == models.TimerBreach {
			breach = asynq.NewTask(o.TaskType, []byte(o.Payload))
		}
		return nil
	})
	f.now = f.now.Add(25 * time.Hour) // a fallen tree has 24 h
	check("overdue, before the timer ran", want{"cityeyes_cases_overdue", city, 1})
	if lag, ok := gauge(t, reg, "cityeyes_outbox_lag_seconds", nil); !ok || lag < 3600 {
		t.Errorf("the breach timer has been due for about an hour, the lag says %v s", lag)
	}
	if err := mux.ProcessTask(ctx, breach); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	check("breached",
		want{"cityeyes_sla_breaches_total", nil, 1},
		want{"cityeyes_cases_overdue", city, 1},
		want{"cityeyes_task_duration_seconds", map[string]string{"type": models.TaskTimer, "result": "ok"}, 1})

	if err := mux.ProcessTask(ctx, asynq.NewTask(models.TaskRoute, []byte("not json"))); err == nil {
		t.Fatal("a task that cannot be read succeeded")
	}
	check("unreadable", want{"cityeyes_task_duration_seconds", map[string]string{"type": models.TaskRoute, "result": "skip"}, 1})

	client := asynq.NewClient(f.redis)
	defer client.Close()
	for range 2 {
		if _, err := client.Enqueue(asynq.NewTask(models.TaskRoute, []byte(`{}`))); err != nil {
			t.Fatal(err)
		}
	}
	check("queued", want{"cityeyes_queue_tasks", map[string]string{"queue": "default", "state": "pending"}, 2},
		want{"cityeyes_queue_tasks", map[string]string{"queue": "default", "state": "active"}, 0})
	if _, ok := gauge(t, reg, "cityeyes_queue_latency_seconds", map[string]string{"queue": "default"}); !ok {
		t.Error("no latency for the default queue")
	}
}
