package api

import (
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// queueFilter reads the queue's filters from the query string: status (comma-separated),
// category and area (codes), mine, unassigned, overdue, q (text), sort, cursor, limit.
func (s *Server) queueFilter(c *fiber.Ctx) (models.QueueFilter, error) {
	ctx := c.UserContext()
	p := caller(c)
	f := models.QueueFilter{JurisdictionID: p.JurisdictionID, Sort: c.Query("sort", "age"), Now: s.now(),
		Cursor: c.Query("cursor"), Limit: c.QueryInt("limit", 50), Text: c.Query("q"),
		Unassigned: c.QueryBool("unassigned"), Overdue: c.QueryBool("overdue")}
	if p.Role == models.RoleHandler {
		f.DepartmentID = p.DepartmentID
	}
	if c.QueryBool("mine") {
		f.AssigneeID = p.UserID
	}
	switch f.Sort {
	case "age", "due", "priority":
	default:
		return f, models.Problemf(models.ErrInvalid, "invalid-sort", "sort must be age (oldest first), due (soonest deadline first) or priority (highest first)")
	}
	if len(f.Text) > 200 {
		return f, models.Problemf(models.ErrInvalid, "invalid-query", "q is over 200 characters")
	}
	if code := c.Query("category"); code != "" {
		cat, err := s.db.CategoryByCode(ctx, p.JurisdictionID, code)
		if err != nil {
			return f, models.Problemf(models.ErrInvalid, "unknown-category", "no category %q in your city", code)
		}
		f.CategoryID = cat.ID
	}
	if code := c.Query("area"); code != "" {
		a, err := s.db.AreaByCode(ctx, p.JurisdictionID, code)
		if err != nil {
			return f, models.Problemf(models.ErrInvalid, "unknown-area", "no area %q in your city", code)
		}
		f.AreaID = a.ID
	}
	if st := c.Query("status"); st != "" {
		for _, v := range strings.Split(st, ",") {
			status := models.Status(strings.TrimSpace(v))
			switch status {
			case models.StatusSubmitted, models.StatusDispatched, models.StatusTriage, models.StatusAccepted,
				models.StatusInProgress, models.StatusResolved, models.StatusClosed:
				f.Statuses = append(f.Statuses, status)
			default:
				return f, models.Problemf(models.ErrInvalid, "invalid-status", "status %q is not one of submitted, dispatched, triage, accepted, in_progress, resolved, closed", v)
			}
		}
	}
	return f, nil
}

// queue lists a work queue page (GET /v1/queue): a handler's department's cases, or a
// supervisor's whole city's, open ones unless a status is asked for.
func (s *Server) queue(c *fiber.Ctx) error {
	ctx := c.UserContext()
	f, err := s.queueFilter(c)
	if err != nil {
		return err
	}
	cs, next, err := s.db.Queue(ctx, f)
	if err != nil {
		return err
	}
	page := Page[Report]{Items: []Report{}, NextCursor: next}
	for i := range cs {
		r, err := s.toReport(ctx, &cs[i], true, true)
		if err != nil {
			return err
		}
		r.Timeline = nil
		page.Items = append(page.Items, *r)
	}
	return c.JSON(page)
}

// queueCounts counts the queue's cases per status, and the open ones overdue and
// unassigned, for the queue's tabs (GET /v1/queue/counts); it takes the queue's filters.
func (s *Server) queueCounts(c *fiber.Ctx) error {
	f, err := s.queueFilter(c)
	if err != nil {
		return err
	}
	byStatus, overdue, unassigned, err := s.db.QueueCounts(c.UserContext(), f)
	if err != nil {
		return err
	}
	out := QueueCounts{Statuses: map[string]int64{}, Overdue: overdue, Unassigned: unassigned}
	for _, st := range []models.Status{models.StatusSubmitted, models.StatusDispatched, models.StatusTriage, models.StatusAccepted,
		models.StatusInProgress, models.StatusResolved, models.StatusClosed} {
		out.Statuses[string(st)] = byStatus[st]
	}
	return c.JSON(out)
}

// staffActions are the actions of POST /v1/cases/{id}/actions.
var staffActions = map[string]models.Action{
	"accept": models.ActionAccept, "reject": models.ActionReject, "start": models.ActionStart,
	"resolve": models.ActionResolve, "close": models.ActionClose, "transfer": models.ActionTransfer,
	"assign": models.ActionAssign, "comment": models.ActionComment, "dispatch": models.ActionDispatch,
}

// caseAction applies a handler's or supervisor's action to a case (POST /v1/cases/{id}/actions).
func (s *Server) caseAction(c *fiber.Ctx) error {
	ctx := c.UserContext()
	p := caller(c)
	var req ActionRequest
	if err := readJSON(c, &req, 64<<10); err != nil {
		return err
	}
	action, ok := staffActions[req.Action]
	if !ok {
		return models.Problemf(models.ErrInvalid, "unknown-action",
			"action %q is not one of accept, reject, start, resolve, close, transfer, assign, comment, dispatch", req.Action)
	}
	if utf8.RuneCountInString(req.Note) > maxDescription {
		return models.Problemf(models.ErrInvalid, "note-too-long", "note is over %d characters", maxDescription)
	}
	if action == models.ActionComment && strings.TrimSpace(req.Note) == "" {
		return models.Problemf(models.ErrInvalid, "note-required", "a comment needs a note")
	}
	ch := models.Change{CaseID: c.Params("id"), Version: req.Version, Action: action, Actor: p.actor(),
		Note: req.Note, Public: req.Public, AssigneeID: req.Assignee,
		Resolution: models.Resolution(req.Resolution), DuplicateOf: req.DuplicateOf}
	if req.Department != "" {
		d, err := s.db.DepartmentByCode(ctx, p.JurisdictionID, req.Department)
		if err != nil {
			return models.Problemf(models.ErrInvalid, "unknown-department", "no department %q in your city", req.Department)
		}
		ch.DepartmentID = &d.ID
		if action == models.ActionTransfer || action == models.ActionDispatch {
			// The deadline restarts with the new department.
			cs, err := s.db.Case(ctx, ch.CaseID)
			if err != nil {
				return err
			}
			cat, err := s.db.Category(ctx, cs.CategoryID)
			if err != nil {
				return err
			}
			ch.DueAt = models.DueAt(cat, s.now())
		}
	}
	cs, _, err := s.db.Transition(ctx, ch, s.now())
	if err != nil {
		return err
	}
	r, err := s.toReport(ctx, cs, true, true)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// feedback is the reporter's answer to a resolved case (POST /v1/reports/{id}/feedback):
// confirm closes it as fixed, reopen sends it back to the same department.
func (s *Server) feedback(c *fiber.Ctx) error {
	ctx := c.UserContext()
	var req FeedbackRequest
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	ch := models.Change{CaseID: c.Params("id"), Version: req.Version, Actor: caller(c).actor(), Note: req.Comment, Rating: req.Rating}
	switch req.Action {
	case "confirm":
		ch.Action = models.ActionConfirm
	case "reopen":
		ch.Action = models.ActionReopen
	default:
		return models.Problemf(models.ErrInvalid, "unknown-action", "action must be confirm or reopen")
	}
	if req.Rating != 0 && (req.Rating < 1 || req.Rating > 5) {
		return models.Problemf(models.ErrInvalid, "invalid-rating", "rating must be a whole number from 1 to 5")
	}
	if utf8.RuneCountInString(req.Comment) > maxDescription {
		return models.Problemf(models.ErrInvalid, "comment-too-long", "comment is over %d characters", maxDescription)
	}
	if ch.Action == models.ActionReopen {
		cs, err := s.db.Case(ctx, ch.CaseID)
		if err != nil {
			return err
		}
		cat, err := s.db.Category(ctx, cs.CategoryID)
		if err != nil {
			return err
		}
		ch.DueAt = models.DueAt(cat, s.now())
	}
	cs, _, err := s.db.Transition(ctx, ch, s.now())
	if err != nil {
		return err
	}
	r, err := s.toReport(ctx, cs, true, false)
	if err != nil {
		return err
	}
	return c.JSON(r)
}
