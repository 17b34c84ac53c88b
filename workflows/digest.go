package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/notifications"
)

// The digests' task types.
const (
	TaskDigestDaily  = "digest:daily"
	TaskDigestWeekly = "digest:weekly"
)

// digestAfter is how long after its period's end (local midnight, and for the weekly digest
// Monday's) a digest goes out: in the morning, not in the night.
const digestAfter = 7 * time.Hour

// digestTasks lists the periodic tasks of the supervisors' daily and weekly digests. Both run
// every hour: each city has its own time zone, and a city's digest goes out at the first run
// after 07:00 there; the unique row per supervisor and period makes every later run (and a
// second worker's) a no-op, and a run missed while the workers were down is made up at the
// next.
func (w *Worker) digestTasks() []Periodic {
	return []Periodic{
		{Cron: "2 * * * *", Type: TaskDigestDaily, Handler: w.handleDigest(models.DigestDaily), Unique: 50 * time.Minute},
		{Cron: "4 * * * *", Type: TaskDigestWeekly, Handler: w.handleDigest(models.DigestWeekly), Unique: 50 * time.Minute},
	}
}

// handleDigest writes each supervisor's digest of the last whole day or week of their city
// into their inbox and pushes it to their phones, once.
func (w *Worker) handleDigest(kind string) asynq.HandlerFunc {
	return func(ctx context.Context, _ *asynq.Task) error {
		return w.SendDigests(ctx, kind, w.cfg.Now())
	}
}

// SendDigests sends the digests of kind due at now, for every city; it may run any number
// of times.
func (w *Worker) SendDigests(ctx context.Context, kind string, now time.Time) error {
	db := w.cfg.DB
	cities, err := db.Jurisdictions(ctx)
	if err != nil {
		return err
	}
	var failed error
	for _, j := range cities {
		if err := w.cityDigests(ctx, j, kind, now); err != nil {
			failed = errors.Join(failed, fmt.Errorf("%s digest of %s: %w", kind, j.ID, err))
		}
	}
	return failed
}

func (w *Worker) cityDigests(ctx context.Context, j models.Jurisdiction, kind string, now time.Time) error {
	db := w.cfg.DB
	bosses, err := db.Supervisors(ctx, j.ID)
	if err != nil || len(bosses) == 0 {
		return err
	}
	loc, err := time.LoadLocation(j.Timezone)
	if err != nil {
		return fmt.Errorf("time zone: %v: %w", err, asynq.SkipRetry)
	}
	from, to := models.DigestPeriod(kind, loc, now, digestAfter)
	st, err := db.Stats(ctx, models.StatsQuery{JurisdictionID: j.ID, From: from, To: to, GroupBy: models.GroupDepartment, Now: now})
	if err != nil {
		return err
	}
	figures := models.DigestFiguresOf(st.Total)
	var failed error
	for _, u := range bosses {
		d, pending, err := db.RecordDigest(ctx, models.Digest{UserID: u.ID, JurisdictionID: j.ID, Kind: kind, PeriodStart: from, PeriodEnd: to},
			figures, w.cfg.Push != nil, now)
		if err != nil {
			return err
		}
		// The figures are those first recorded: a second run pushes what the inbox shows.
		var f models.DigestFigures
		if err := json.Unmarshal([]byte(d.Figures), &f); err != nil {
			return err
		}
		for _, pp := range pending {
			onTime := -1.0
			if f.OnTimeRate != nil {
				onTime = *f.OnTimeRate
			}
			title, body := notifications.DigestText(pp.Device.Locale, kind, f.Received, f.Closed, f.Backlog, f.Overdue, onTime)
			token := *pp.Device.PushToken
			id, err := w.cfg.Push.Send(ctx, notifications.Message{Token: token, Title: title, Body: body,
				Data: map[string]string{"digest_id": d.ID, "kind": kind, "period_start": from.Format(time.RFC3339)}})
			now := w.cfg.Now()
			switch {
			case errors.Is(err, notifications.ErrUnregistered):
				if err := db.DropPushToken(ctx, pp.Device.ID, token, now); err != nil {
					return err
				}
				if err := db.MarkDigestDelivery(ctx, pp.Delivery.ID, models.DeliveryDropped, "", err.Error(), now); err != nil {
					return err
				}
			case err != nil:
				failed = errors.Join(failed, err) // retried with the task; sent ones stay sent
			default:
				if err := db.MarkDigestDelivery(ctx, pp.Delivery.ID, models.DeliverySent, id, "", now); err != nil {
					return err
				}
			}
		}
	}
	return failed
}
