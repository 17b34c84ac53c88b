package api

import (
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// queue lists a work queue page (GET /v1/queue): a handler's department's open cases, or a
// supervisor's whole city's.
func (s *Server) queue(c *fiber.Ctx) error {
	ctx := c.UserContext()
	p := caller(c)
	f := models.QueueFilter{JurisdictionID: p.JurisdictionID, Sort: c.Query("sort", "age"),
		Cursor: c.Query("cursor"), Limit: c.QueryInt("limit", 50)}
	if p.Role == models.RoleHandler {
		f.DepartmentID = p.DepartmentID
	}
	if f.Sort != "age" && f.Sort != "due" {
		return models.Problemf(models.ErrInvalid, "invalid-sort", "sort must be age (oldest first) or due (soonest deadline first)")
	}
	if st := c.Query("status"); st != "" {
		for _, v := range strings.Split(st, ",") {
			status := models.Status(strings.TrimSpace(v))
			switch status {
			case models.StatusSubmitted, models.StatusDispatched, models.StatusTriage, models.StatusAccepted,
				models.StatusInProgress, models.StatusResolved, models.StatusClosed:
				f.Statuses = append(f.Statuses, status)
			default:
				return models.Problemf(models.ErrInvalid, "invalid-status", "status %q is not one of submitted, dispatched, triage, accepted, in_progress, resolved, closed", v)
			}
		}
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
