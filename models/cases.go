package models

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// NewID returns a random UUID: case, event and media ids must not be guessable in sequence.
func NewID() string { return uuid.NewString() }

// Task types written to the outbox. The workflows package registers a handler for each.
const (
	TaskRoute  = "case:route"
	TaskNotify = "case:notify"
	TaskPhoto  = "media:process"
)

// RoutePayload asks the workers to route a submitted case.
type RoutePayload struct {
	OutboxID string `json:"outbox_id"`
	CaseID   string `json:"case_id"`
}

// PhotoPayload asks the workers to make a photo's display and thumbnail versions.
type PhotoPayload struct {
	OutboxID string `json:"outbox_id"`
	MediaID  string `json:"media_id"`
}

// NotifyPayload asks the workers to tell everyone concerned of a public case event.
type NotifyPayload struct {
	OutboxID string `json:"outbox_id"`
	EventID  string `json:"event_id"`
}

// NewCase is a citizen's report as intake accepted it, ready to be stored.
type NewCase struct {
	ID             string // chosen by the caller, so photos can be stored under it first
	ReporterID     string
	JurisdictionID string
	CategoryID     string
	AreaID         *string
	Description    string
	Address        string
	Lat, Lon       float64
	LocationSource string // "" means the device's position
	Attributes     map[string]any
	Media          []Media
	// Uploads are the ids of direct uploads the photos in Media came from; their
	// reservations are removed in the case's transaction, so each is attached once.
	Uploads []string
	// IdempotencyKey and Fingerprint (a digest of the request's content) make a retried
	// submission return the case the first one created.
	IdempotencyKey string
	Fingerprint    string
}

// ErrReplay is returned by CreateCase when the idempotency key was used before for the
// same content; the error carries the id of the case that first request created.
type ErrReplay struct{ CaseID string }

func (e *ErrReplay) Error() string { return "replayed submission of case " + e.CaseID }

// FindIdempotencyKey returns the key's stored record, or ErrNotFound.
func (db *DB) FindIdempotencyKey(ctx context.Context, userID, key string) (*IdempotencyKey, error) {
	var k IdempotencyKey
	err := db.q(ctx).Where("user_id = ? AND key = ?", userID, key).Take(&k).Error
	return &k, translate(err)
}

// CreateCase stores a new case in one transaction: the case, its first event, its photos,
// the idempotency key and the outbox row that asks for it to be routed. A key already used
// for the same content gives *ErrReplay; for other content, a conflict.
func (db *DB) CreateCase(ctx context.Context, nc NewCase, now time.Time) (*Case, error) {
	now = now.UTC()
	attrs, err := json.Marshal(nc.Attributes)
	if err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	if nc.Attributes == nil {
		attrs = []byte("{}")
	}
	c := &Case{
		ID:             nc.ID,
		JurisdictionID: nc.JurisdictionID,
		CategoryID:     nc.CategoryID,
		AreaID:         nc.AreaID,
		ReporterID:     nc.ReporterID,
		Status:         StatusSubmitted,
		Description:    nc.Description,
		Lat:            nc.Lat,
		Lon:            nc.Lon,
		LocationSource: cmp.Or(nc.LocationSource, "device"),
		Address:        nc.Address,
		Attributes:     string(attrs),
		Version:        1,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	err = db.InTx(ctx, func(tx *DB) error {
		number, err := tx.nextNumber(ctx, nc.JurisdictionID)
		if err != nil {
			return err
		}
		c.Number = number
		if err := tx.q(ctx).Create(c).Error; err != nil {
			return err
		}
		facts := factsOf(c)
		if err := tx.recordStatsChange(ctx, c.JurisdictionID, nil, &facts); err != nil {
			return err
		}
		ev := &CaseEvent{
			ID: NewID(), CaseID: c.ID, Seq: 1, Type: ActionSubmit,
			ActorID: &nc.ReporterID, ActorRole: RoleCitizen,
			ToStatus: StatusSubmitted, Public: true, Data: "{}", CreatedAt: now,
		}
		if err := tx.q(ctx).Create(ev).Error; err != nil {
			return err
		}
		if err := tx.consumeUploads(ctx, nc.ReporterID, nc.Uploads); err != nil {
			return err
		}
		for i := range nc.Media {
			nc.Media[i].CaseID = &c.ID
			nc.Media[i].CreatedAt = now
		}
		if err := tx.addMedia(ctx, nc.Media, now); err != nil {
			return err
		}
		if nc.IdempotencyKey != "" {
			k := &IdempotencyKey{UserID: nc.ReporterID, Key: nc.IdempotencyKey, Fingerprint: nc.Fingerprint, CaseID: c.ID, CreatedAt: now}
			if err := tx.q(ctx).Create(k).Error; err != nil {
				return err
			}
		}
		outboxID := NewID()
		return tx.addOutbox(ctx, outboxID, TaskRoute, RoutePayload{OutboxID: outboxID, CaseID: c.ID}, now, now)
	})
	if err == nil {
		return c, nil
	}
	if nc.IdempotencyKey != "" && errors.Is(err, ErrConflict) {
		// Two submissions with one key raced, or the key was used before: the unique key
		// decided which one stands.
		k, kerr := db.FindIdempotencyKey(ctx, nc.ReporterID, nc.IdempotencyKey)
		if kerr == nil {
			if k.Fingerprint == nc.Fingerprint {
				return nil, &ErrReplay{CaseID: k.CaseID}
			}
			return nil, IdempotencyMismatch()
		}
	}
	return nil, err
}

// addMedia stores photo rows and asks for each to be processed, in the current transaction.
func (db *DB) addMedia(ctx context.Context, ms []Media, now time.Time) error {
	if len(ms) == 0 {
		return nil
	}
	for i := range ms {
		ms[i].CreatedAt = now
	}
	if err := db.q(ctx).Create(&ms).Error; err != nil {
		return err
	}
	for _, m := range ms {
		id := NewID()
		if err := db.addOutbox(ctx, id, TaskPhoto, PhotoPayload{OutboxID: id, MediaID: m.ID}, now, now); err != nil {
			return err
		}
	}
	return nil
}

// MediaByID returns one photo.
func (db *DB) MediaByID(ctx context.Context, id string) (*Media, error) {
	var m Media
	if err := db.q(ctx).Where("id = ?", id).Take(&m).Error; err != nil {
		return nil, translate(err)
	}
	return &m, nil
}

// PhotoProcessed records a photo's versions (or why none could be made) and marks the task
// done, in one transaction.
func (db *DB) PhotoProcessed(ctx context.Context, mediaID, outboxID string, display, thumb *string, failure string, now time.Time) error {
	return db.InTx(ctx, func(tx *DB) error {
		err := tx.q(ctx).Model(&Media{}).Where("id = ?", mediaID).Updates(map[string]any{
			"display_key": display, "thumb_key": thumb, "process_error": failure, "processed_at": now.UTC(),
		}).Error
		if err != nil {
			return err
		}
		return tx.MarkOutboxDone(ctx, outboxID, now)
	})
}

// IdempotencyMismatch is the error for a key reused with another request.
func IdempotencyMismatch() error {
	return Problemf(ErrConflict, "idempotency-key-reused",
		"this Idempotency-Key was already used for a different report; send a new key for a new report")
}

// nextNumber hands out the jurisdiction's next human-readable case number. The counter row
// is locked until the transaction ends, so numbers are unique and gapless per city.
func (db *DB) nextNumber(ctx context.Context, jurisdictionID string) (string, error) {
	var seq int64
	err := db.q(ctx).Raw(
		"UPDATE jurisdictions SET next_case_seq = next_case_seq + 1 WHERE id = ? RETURNING next_case_seq",
		jurisdictionID).Scan(&seq).Error
	if err != nil {
		return "", err
	}
	if seq == 0 {
		return "", fmt.Errorf("%w: jurisdiction %q", ErrNotFound, jurisdictionID)
	}
	return fmt.Sprintf("%s-%06d", strings.ToUpper(jurisdictionID), seq), nil
}

// Case returns one case.
func (db *DB) Case(ctx context.Context, id string) (*Case, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, fmt.Errorf("%w: case %q", ErrNotFound, id)
	}
	var c Case
	err := db.q(ctx).Where("id = ?", id).Take(&c).Error
	if err != nil {
		return nil, translate(err)
	}
	return &c, nil
}

// Timeline returns a case's events in order. With publicOnly, internal notes are left out.
func (db *DB) Timeline(ctx context.Context, caseID string, publicOnly bool) ([]CaseEvent, error) {
	var evs []CaseEvent
	q := db.q(ctx).Where("case_id = ?", caseID)
	if publicOnly {
		q = q.Where("public = ?", true)
	}
	err := q.Order("seq").Find(&evs).Error
	return evs, translate(err)
}

// CaseMedia returns a case's photos in the order they were added.
func (db *DB) CaseMedia(ctx context.Context, caseID string) ([]Media, error) {
	var ms []Media
	err := db.q(ctx).Where("case_id = ?", caseID).Order("created_at, id").Find(&ms).Error
	return ms, translate(err)
}

// Event returns one case event.
func (db *DB) Event(ctx context.Context, id string) (*CaseEvent, error) {
	var ev CaseEvent
	if err := db.q(ctx).Where("id = ?", id).Take(&ev).Error; err != nil {
		return nil, translate(err)
	}
	return &ev, nil
}

// Actor is who takes an action: a user with their role and, for staff, where they work.
type Actor struct {
	ID             *string // nil for the system
	Role           Role
	JurisdictionID string
	DepartmentID   string
}

// SystemActor is the workers acting on their own (routing, timeouts).
var SystemActor = Actor{Role: RoleSystem}

// Change is one action on a case.
type Change struct {
	CaseID string
	// Version is the version the actor last saw; 0 skips the check (the system's actions,
	// which are conditional on the status instead).
	Version      int
	Action       Action
	Actor        Actor
	Note         string
	Public       bool    // for comments: a public update the reporter sees
	DepartmentID *string // route, dispatch, transfer
	AssigneeID   *string // assign; an empty string unassigns
	Resolution   Resolution
	DuplicateOf  *string
	Until        *time.Time // defer: when the clock runs again
	Rating       int        // confirm
	// Media are photos that come with the change (a handler's "after" photos).
	Media []Media
	// CompletesOutbox, when set, marks that outbox row done in the same transaction: the
	// task that made this change has then finished, and a second run of it does nothing.
	CompletesOutbox string
}

// Transition applies a change to a case, in one transaction: the lifecycle and the actor's
// right to act are checked against the case as it is now, the row is updated only if its
// version is still the one read (so two handlers can never both accept), an event is
// appended, and a public event queues its notifications.
func (db *DB) Transition(ctx context.Context, ch Change, now time.Time) (*Case, *CaseEvent, error) {
	now = now.UTC()
	var (
		out *Case
		ev  *CaseEvent
	)
	err := db.InTx(ctx, func(tx *DB) error {
		c, err := tx.Case(ctx, ch.CaseID)
		if err != nil {
			return err
		}
		if err := mayAct(ch.Actor, c, ch.Action); err != nil {
			return err
		}
		if ch.Version != 0 && ch.Version != c.Version {
			return Problemf(ErrConflict, "stale-version",
				"case %s was changed by someone else (you sent version %d, it is now at %d); reload it and try again",
				c.Number, ch.Version, c.Version)
		}
		to, ok := Allowed(ch.Action, c.Status)
		if !ok {
			return Problemf(ErrConflict, "action-not-allowed",
				"cannot %s case %s while it is %s; %s is allowed only from %v",
				ch.Action, c.Number, c.Status, ch.Action, AllowedFrom(ch.Action))
		}
		updates, data, err := tx.applyChange(ctx, c, ch, &to, now)
		if err != nil {
			return err
		}
		updates["status"] = to
		updates["version"] = c.Version + 1
		updates["updated_at"] = now
		res := tx.q(ctx).Model(&Case{}).Where("id = ? AND version = ?", c.ID, c.Version).Updates(updates)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return Problemf(ErrConflict, "stale-version", "case %s was changed by someone else; reload it and try again", c.Number)
		}
		dataJSON, _ := json.Marshal(data)
		ev = &CaseEvent{
			ID: NewID(), CaseID: c.ID, Seq: c.Version + 1, Type: ch.Action,
			ActorID: ch.Actor.ID, ActorRole: ch.Actor.Role,
			FromStatus: c.Status, ToStatus: to,
			Public: to != c.Status || ((ch.Action == ActionComment || ch.Action == ActionDefer) && ch.Public),
			Note:   ch.Note, Data: string(dataJSON), CreatedAt: now,
		}
		if err := tx.q(ctx).Create(ev).Error; err != nil {
			return err
		}
		for i := range ch.Media {
			ch.Media[i].CaseID = &c.ID
		}
		if err := tx.addMedia(ctx, ch.Media, now); err != nil {
			return err
		}
		if ch.CompletesOutbox != "" {
			if err := tx.MarkOutboxDone(ctx, ch.CompletesOutbox, now); err != nil {
				return err
			}
		}
		// Public events reach the reporter; reminders and escalations reach staff.
		if ev.Public || ev.Type == ActionRemind || ev.Type == ActionEscalate {
			id := NewID()
			if err := tx.addOutbox(ctx, id, TaskNotify, NotifyPayload{OutboxID: id, EventID: ev.ID}, now, now); err != nil {
				return err
			}
		}
		if out, err = tx.Case(ctx, c.ID); err != nil {
			return err
		}
		before, after := factsOf(c), factsOf(out)
		if err := tx.recordStatsChange(ctx, c.JurisdictionID, &before, &after); err != nil {
			return err
		}
		return tx.scheduleTimers(ctx, c, out, ev, now)
	})
	if err != nil {
		return nil, nil, err
	}
	return out, ev, nil
}

// applyChange works out the columns an action changes besides status and version, and the
// details its event records. It may redirect the target status (routing to the triage desk).
func (db *DB) applyChange(ctx context.Context, c *Case, ch Change, to *Status, now time.Time) (map[string]any, map[string]any, error) {
	u := map[string]any{}
	data := map[string]any{}
	setDepartment := func() error {
		if ch.DepartmentID == nil || *ch.DepartmentID == "" {
			return Problemf(ErrInvalid, "department-required", "%s needs the department to send the case to", ch.Action)
		}
		d, err := db.Department(ctx, *ch.DepartmentID)
		if err != nil || d.JurisdictionID != c.JurisdictionID {
			return Problemf(ErrInvalid, "unknown-department", "no department %q in this city", *ch.DepartmentID)
		}
		u["department_id"] = d.ID
		u["assignee_id"] = nil
		u["deferred_until"], u["remaining_seconds"], u["escalation_level"] = nil, nil, 0
		due, err := db.deadlineFor(ctx, c, now)
		if err != nil {
			return err
		}
		u["due_at"] = due
		data["department"] = d.Code
		triage, err := db.isTriage(ctx, c.JurisdictionID, d.ID)
		if err != nil {
			return err
		}
		if triage {
			*to = StatusTriage
			u["due_at"] = nil
		} else {
			u["dispatched_at"] = now
		}
		return nil
	}
	firstResponse := func() {
		if c.FirstResponseAt == nil {
			u["first_response_at"] = now
		}
	}
	switch ch.Action {
	case ActionRoute, ActionDispatch, ActionTransfer, ActionReopen:
		if ch.Action == ActionReopen {
			if err := db.checkConfirmWindow(ctx, c, now); err != nil {
				return nil, nil, err
			}
		}
		if ch.Action == ActionReopen && ch.DepartmentID == nil {
			ch.DepartmentID = c.DepartmentID // rework goes back to the same department
		}
		if err := setDepartment(); err != nil {
			return nil, nil, err
		}
		if ch.Action == ActionReopen {
			u["resolved_at"] = nil
			u["reopened"] = true
		}
	case ActionReject:
		firstResponse()
		j, err := db.Jurisdiction(ctx, c.JurisdictionID)
		if err != nil {
			return nil, nil, err
		}
		u["department_id"] = j.TriageDepartmentID
		u["assignee_id"] = nil
		u["due_at"] = nil
	case ActionAccept, ActionStart:
		firstResponse()
	case ActionResolve:
		firstResponse()
		u["resolved_at"] = now
		cat, err := db.Category(ctx, c.CategoryID)
		if err != nil {
			return nil, nil, err
		}
		if cat.AfterPhoto == "required" && !hasAfter(ch.Media) {
			return nil, nil, Problemf(ErrInvalid, "after-photo-required",
				"category %s needs an \"after\" photo to resolve: send the action as multipart with a photo part", cat.Code)
		}
	case ActionConfirm, ActionTimeout:
		if ch.Action == ActionConfirm {
			if err := db.checkConfirmWindow(ctx, c, now); err != nil {
				return nil, nil, err
			}
		}
		u["resolution"] = ResolutionFixed
		u["closed_at"] = now
		if ch.Rating != 0 {
			data["rating"] = ch.Rating
			u["rating"], u["rated_at"] = ch.Rating, now
		}
	case ActionClose:
		if !ValidResolution(ch.Resolution) {
			return nil, nil, Problemf(ErrInvalid, "resolution-required",
				"close needs a resolution: one of fixed, duplicate, invalid, not_responsible, no_action")
		}
		if ch.Resolution == ResolutionDuplicate {
			if ch.DuplicateOf == nil {
				return nil, nil, Problemf(ErrInvalid, "duplicate-of-required", "closing as duplicate needs duplicate_of: the id of the original case")
			}
			orig, err := db.Case(ctx, *ch.DuplicateOf)
			if err != nil || orig.JurisdictionID != c.JurisdictionID || orig.ID == c.ID {
				return nil, nil, Problemf(ErrInvalid, "unknown-duplicate", "duplicate_of %q is not another case of this city", *ch.DuplicateOf)
			}
			u["duplicate_of"] = orig.ID
			data["duplicate_of"] = orig.ID
		}
		firstResponse()
		u["resolution"] = ch.Resolution
		u["closed_at"] = now
		data["resolution"] = ch.Resolution
	case ActionRate:
		if ch.Rating < 1 || ch.Rating > 5 {
			return nil, nil, Problemf(ErrInvalid, "invalid-rating", "rate needs a rating from 1 to 5")
		}
		var rated int64
		if err := db.q(ctx).Model(&CaseEvent{}).Where("case_id = ? AND (type = ? OR (type = ? AND CAST(data AS TEXT) LIKE ?))",
			c.ID, ActionRate, ActionConfirm, `%"rating"%`).Count(&rated).Error; err != nil {
			return nil, nil, err
		}
		if rated > 0 {
			return nil, nil, Problemf(ErrConflict, "already-rated", "case %s has been rated already", c.Number)
		}
		data["rating"] = ch.Rating
		u["rating"], u["rated_at"] = ch.Rating, now
	case ActionDefer:
		if strings.TrimSpace(ch.Note) == "" || ch.Until == nil {
			return nil, nil, Problemf(ErrInvalid, "defer-needs-reason", "defer needs a note (the reason) and until (when work can resume)")
		}
		if !ch.Until.After(now) || ch.Until.After(now.AddDate(1, 0, 0)) {
			return nil, nil, Problemf(ErrInvalid, "invalid-until", "until must be in the future and within a year")
		}
		if c.DeferredUntil != nil {
			return nil, nil, Problemf(ErrConflict, "already-deferred", "case %s is already deferred until %s", c.Number, c.DeferredUntil.UTC().Format(time.RFC3339))
		}
		var remaining int64
		if c.DueAt != nil {
			wc, _, err := db.workCalendar(ctx, c.JurisdictionID)
			if err != nil {
				return nil, nil, err
			}
			remaining = int64(wc.Elapsed(now, *c.DueAt) / time.Second)
		}
		u["deferred_until"], u["remaining_seconds"], u["due_at"] = ch.Until.UTC(), remaining, nil
		u["deferred"] = true
		data["until"], data["remaining_seconds"] = ch.Until.UTC(), remaining
	case ActionResume:
		wc, _, err := db.workCalendar(ctx, c.JurisdictionID)
		if err != nil {
			return nil, nil, err
		}
		var left time.Duration
		if c.RemainingSecs != nil {
			left = time.Duration(*c.RemainingSecs) * time.Second
		}
		u["due_at"], u["deferred_until"], u["remaining_seconds"] = wc.Due(now, left), nil, nil
	case ActionEscalate:
		u["escalation_level"] = c.EscalationLevel + 1
		u["priority"] = c.Priority + 1
		data["level"] = c.EscalationLevel + 1
	case ActionAssign:
		if ch.AssigneeID == nil || *ch.AssigneeID == "" {
			u["assignee_id"] = nil
			data["assignee"] = nil
			break
		}
		a, err := db.User(ctx, *ch.AssigneeID)
		if err != nil || a.Role != RoleHandler || a.DepartmentID == nil || c.DepartmentID == nil || *a.DepartmentID != *c.DepartmentID || a.Disabled {
			return nil, nil, Problemf(ErrInvalid, "unknown-assignee", "assignee %q is not an active handler of the case's department", *ch.AssigneeID)
		}
		u["assignee_id"] = a.ID
		data["assignee"] = a.ID
	}
	return u, data, nil
}

func hasAfter(ms []Media) bool {
	for _, m := range ms {
		if m.Kind == MediaAfter {
			return true
		}
	}
	return false
}

// systemActions are taken only by the workers; citizenActions only by a case's reporter;
// dispatching from the triage desk only by supervisors and administrators.
var (
	systemActions  = []Action{ActionRoute, ActionRemind, ActionEscalate, ActionResume, ActionTimeout}
	citizenActions = []Action{ActionConfirm, ActionReopen, ActionRate}
)

// mayAct checks that the actor may take this action on this case at all, before the
// lifecycle is consulted: handlers act on their department's cases, supervisors and
// administrators on their city's, the reporter only confirms or reopens, and the workers
// only route and keep time.
func mayAct(a Actor, c *Case, action Action) error {
	system, citizen := slices.Contains(systemActions, action), slices.Contains(citizenActions, action)
	staff := !system && !citizen && action != ActionSubmit
	switch a.Role {
	case RoleSystem:
		// Comments too: an Open311 client's, posted on a citizen's behalf.
		if system || action == ActionComment {
			return nil
		}
	case RoleCitizen:
		if a.ID == nil || *a.ID != c.ReporterID {
			return fmt.Errorf("%w: case %s", ErrNotFound, c.ID)
		}
		if citizen {
			return nil
		}
	case RoleHandler:
		if a.JurisdictionID != "" && a.JurisdictionID != c.JurisdictionID {
			return fmt.Errorf("%w: case %s", ErrNotFound, c.ID)
		}
		if c.DepartmentID == nil || a.DepartmentID != *c.DepartmentID {
			return Problemf(ErrForbidden, "other-department",
				"case %s belongs to another department; only its own department's handlers or a supervisor may act on it", c.Number)
		}
		if staff && action != ActionDispatch {
			return nil
		}
	case RoleSupervisor, RoleAdmin:
		if a.JurisdictionID != c.JurisdictionID {
			// Another city's case does not exist as far as this city's staff can tell.
			return fmt.Errorf("%w: case %s", ErrNotFound, c.ID)
		}
		if staff {
			return nil
		}
	}
	return Problemf(ErrForbidden, "action-forbidden", "a %s may not %s a case", a.Role, action)
}

// QueueFilter selects a work queue page.
type QueueFilter struct {
	JurisdictionID string
	DepartmentID   string // empty: the whole jurisdiction (supervisors)
	Statuses       []Status
	CategoryID     string
	AreaID         string
	AssigneeID     string // "assigned to me"
	Unassigned     bool
	Overdue        bool // due before Now
	Text           string
	Now            time.Time
	Sort           string // "age" (oldest first, the default), "due" (soonest deadline first), "priority"
	Cursor         string
	Limit          int
}

// openQueueStatuses are the statuses a queue shows unless asked for others. The same list
// is written out in openStatusesSQL, as a literal, so that the planner can match it to the
// partial indexes of the open cases (migration 00003).
var openQueueStatuses = []Status{StatusDispatched, StatusTriage, StatusAccepted, StatusInProgress}

const openStatusesSQL = "status IN ('dispatched', 'triage', 'accepted', 'in_progress')"

// queueScope applies the filters a queue page and its counts share.
func (db *DB) queueScope(ctx context.Context, f QueueFilter) *gorm.DB {
	q := db.q(ctx).Model(&Case{}).Where("jurisdiction_id = ?", f.JurisdictionID)
	if f.DepartmentID != "" {
		q = q.Where("department_id = ?", f.DepartmentID)
	}
	if f.CategoryID != "" {
		q = q.Where("category_id = ?", f.CategoryID)
	}
	if f.AreaID != "" {
		q = q.Where("area_id = ?", f.AreaID)
	}
	if f.AssigneeID != "" {
		q = q.Where("assignee_id = ?", f.AssigneeID)
	}
	if f.Unassigned {
		q = q.Where("assignee_id IS NULL")
	}
	if f.Overdue {
		q = q.Where("due_at < ?", f.Now.UTC())
	}
	if t := strings.TrimSpace(f.Text); t != "" {
		like := "%" + strings.NewReplacer("%", "\\%", "_", "\\_").Replace(strings.ToLower(t)) + "%"
		q = q.Where("(number = ? OR LOWER(description) LIKE ? ESCAPE '\\' OR LOWER(address) LIKE ? ESCAPE '\\')", strings.ToUpper(t), like, like)
	}
	return q
}

// Queue returns one page of a work queue and the cursor of the next page ("" at the end).
// Paging is by key (the sort values and the id of the last row), so a page costs the same
// wherever it is in the queue and rows do not shift while a handler pages.
func (db *DB) Queue(ctx context.Context, f QueueFilter) ([]Case, string, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	var after queueCursor
	if f.Cursor != "" {
		if err := decodeCursor(f.Cursor, &after); err != nil {
			return nil, "", err
		}
	}
	scope := func() *gorm.DB {
		q := db.queueScope(ctx, f)
		if len(f.Statuses) > 0 {
			return q.Where("status IN ?", f.Statuses)
		}
		return q.Where(openStatusesSQL)
	}
	var cs []Case
	switch f.Sort {
	case "due":
		// Cases with a deadline by deadline, then those without (triage, deferred) by id:
		// two index range scans rather than one sort over a COALESCE.
		if !after.NoDue {
			q := scope().Where("due_at IS NOT NULL")
			if f.Cursor != "" {
				q = q.Where("(due_at > ? OR (due_at = ? AND id > ?))", after.T, after.T, after.ID)
			}
			if err := q.Order("due_at, id").Limit(f.Limit + 1).Find(&cs).Error; err != nil {
				return nil, "", translate(err)
			}
		}
		if len(cs) <= f.Limit {
			var rest []Case
			q := scope().Where("due_at IS NULL")
			if after.NoDue {
				q = q.Where("id > ?", after.ID)
			}
			if err := q.Order("id").Limit(f.Limit + 1 - len(cs)).Find(&rest).Error; err != nil {
				return nil, "", translate(err)
			}
			cs = append(cs, rest...)
		}
	case "priority":
		q := scope()
		if f.Cursor != "" {
			q = q.Where("(priority < ? OR (priority = ? AND (created_at > ? OR (created_at = ? AND id > ?))))", after.P, after.P, after.T, after.T, after.ID)
		}
		if err := q.Order("priority DESC, created_at, id").Limit(f.Limit + 1).Find(&cs).Error; err != nil {
			return nil, "", translate(err)
		}
	default:
		q := scope()
		if f.Cursor != "" {
			q = q.Where("(created_at > ? OR (created_at = ? AND id > ?))", after.T, after.T, after.ID)
		}
		if err := q.Order("created_at, id").Limit(f.Limit + 1).Find(&cs).Error; err != nil {
			return nil, "", translate(err)
		}
	}
	next := ""
	if len(cs) > f.Limit {
		cs = cs[:f.Limit]
		last := cs[len(cs)-1]
		cur := queueCursor{T: last.CreatedAt, P: last.Priority, ID: last.ID}
		if f.Sort == "due" {
			if last.DueAt != nil {
				cur.T = *last.DueAt
			} else {
				cur.T, cur.NoDue = time.Time{}, true
			}
		}
		next = encodeCursor(cur)
	}
	return cs, next, nil
}

// queueCursor is where a queue page ended: the last row's sort values and id.
type queueCursor struct {
	T     time.Time `json:"t"`
	P     int       `json:"p,omitempty"`
	NoDue bool      `json:"n,omitempty"` // in the part of a by-deadline queue without deadlines
	ID    string    `json:"id"`
}

// QueueCounts counts a queue's open cases per status (the working statuses and resolved:
// closed cases are history, and counting a city's years of them would cost more than any
// tab is worth), and how many of the working ones are overdue or unassigned. The status
// filter is ignored: the tabs show every status.
func (db *DB) QueueCounts(ctx context.Context, f QueueFilter) (map[Status]int64, int64, int64, error) {
	// One pass over the queue's open cases counts all three.
	var rows []struct {
		Status     Status
		N          int64
		Overdue    int64
		Unassigned int64
	}
	err := db.queueScope(ctx, f).Where("status IN ?", []Status{StatusSubmitted, StatusDispatched, StatusTriage,
		StatusAccepted, StatusInProgress, StatusResolved}).
		Select("status, COUNT(*) AS n, SUM(CASE WHEN due_at < ? THEN 1 ELSE 0 END) AS overdue, "+
			"SUM(CASE WHEN assignee_id IS NULL THEN 1 ELSE 0 END) AS unassigned", f.Now.UTC()).
		Group("status").Scan(&rows).Error
	if err != nil {
		return nil, 0, 0, translate(err)
	}
	counts := map[Status]int64{}
	var overdue, unassigned int64
	for _, r := range rows {
		counts[r.Status] = r.N
		if slices.Contains(openQueueStatuses, r.Status) {
			overdue += r.Overdue
			unassigned += r.Unassigned
		}
	}
	return counts, overdue, unassigned, nil
}

// ReporterCases returns a citizen's own cases, newest first, a page at a time.
func (db *DB) ReporterCases(ctx context.Context, reporterID, cursor string, limit int) ([]Case, string, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	q := db.q(ctx).Where("reporter_id = ?", reporterID)
	if cursor != "" {
		var after queueCursor
		if err := decodeCursor(cursor, &after); err != nil {
			return nil, "", err
		}
		q = q.Where("(created_at < ? OR (created_at = ? AND id < ?))", after.T, after.T, after.ID)
	}
	var cs []Case
	if err := q.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&cs).Error; err != nil {
		return nil, "", translate(err)
	}
	next := ""
	if len(cs) > limit {
		cs = cs[:limit]
		next = encodeCursor(queueCursor{T: cs[len(cs)-1].CreatedAt, ID: cs[len(cs)-1].ID})
	}
	return cs, next, nil
}

// addOutbox writes a task for the relay in the current transaction. Its payload carries the
// outbox id, which is also the task id, so the task can mark its row done; the row keeps the
// request id ctx carries, so the task's log lines can name the request that caused it.
func (db *DB) addOutbox(ctx context.Context, id, taskType string, payload any, processAt, now time.Time) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	now = now.UTC()
	return db.q(ctx).Create(&Outbox{
		ID: id, TaskType: taskType, Payload: string(b),
		ProcessAt: processAt.UTC(), NextAttemptAt: now, CreatedAt: now, RequestID: RequestID(ctx),
	}).Error
}
