package api

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
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
	var err error
	if f.CategoryID, f.AreaID, err = s.placeFilters(ctx, c, p.JurisdictionID); err != nil {
		return f, err
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
	items, err := s.toReports(ctx, cs, true, true, false)
	if err != nil {
		return err
	}
	page := Page[Report]{Items: items, NextCursor: next}
	return c.JSON(page)
}

// queueCounts counts the queue's open cases per status, and those overdue and
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
		models.StatusInProgress, models.StatusResolved} {
		out.Statuses[string(st)] = byStatus[st]
	}
	return c.JSON(out)
}

// staffActions are the actions of POST /v1/cases/{id}/actions.
var staffActions = map[string]models.Action{
	"accept": models.ActionAccept, "reject": models.ActionReject, "start": models.ActionStart,
	"resolve": models.ActionResolve, "close": models.ActionClose, "transfer": models.ActionTransfer,
	"assign": models.ActionAssign, "comment": models.ActionComment, "dispatch": models.ActionDispatch,
	"defer": models.ActionDefer,
}

// caseAction applies a handler's or supervisor's action to a case (POST /v1/cases/{id}/actions).
func (s *Server) caseAction(c *fiber.Ctx) error {
	ctx := c.UserContext()
	p := caller(c)
	caseID := c.Params("id")
	req, photos, err := s.readAction(c, caseID, p.UserID)
	cleanup := func() { s.removePhotos(ctx, photos) }
	if err != nil {
		cleanup()
		return err
	}
	ch, err := s.actionChange(c, caseID, req, photos)
	if err != nil {
		cleanup()
		return err
	}
	cs, _, err := s.db.Transition(ctx, ch, s.now())
	if err != nil {
		cleanup()
		return err
	}
	r, err := s.toReport(ctx, cs, true, true)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// bulkAction applies one action to several cases (POST /v1/cases/actions), each in its own
// transaction: one case refusing (another department's, a stale version, a status that
// does not allow it) does not undo the others, and the answer says what happened to each.
func (s *Server) bulkAction(c *fiber.Ctx) error {
	ctx := c.UserContext()
	var req BulkActionRequest
	if err := readJSON(c, &req, 256<<10); err != nil {
		return err
	}
	if len(req.CaseIDs) == 0 || len(req.CaseIDs) > 100 {
		return models.Problemf(models.ErrInvalid, "invalid-bulk", "case_ids must list 1 to 100 cases")
	}
	out := BulkActionResult{Results: []BulkItem{}}
	for _, id := range req.CaseIDs {
		item := BulkItem{ID: id, Status: fiber.StatusOK}
		ch, err := s.actionChange(c, id, req.ActionRequest, nil)
		if err == nil {
			var cs *models.Case
			if cs, _, err = s.db.Transition(ctx, ch, s.now()); err == nil {
				item.Version, item.CaseStatus = cs.Version, string(cs.Status)
			}
		}
		if err != nil {
			p := s.problemOf(err)
			if p.Status >= 500 {
				return err // a dependency is down: say so for the whole request
			}
			item.Status, item.Problem = p.Status, &p
		}
		out.Results = append(out.Results, item)
	}
	return c.JSON(out)
}

// readAction reads an action as JSON, or as multipart with "after" photos (resolve) as
// photo parts and the other fields as form fields.
func (s *Server) readAction(c *fiber.Ctx, caseID, owner string) (ActionRequest, []models.Media, error) {
	var req ActionRequest
	mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != "multipart/form-data" {
		return req, nil, readJSON(c, &req, 64<<10)
	}
	var photos []models.Media
	body := c.Context().RequestBodyStream()
	if body == nil {
		body = bytes.NewReader(c.Body())
	}
	mr := multipart.NewReader(body, params["boundary"])
	fields := map[string]string{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return req, photos, models.Problemf(models.ErrMalformed, "malformed-multipart", "the multipart body cannot be read: %v", err)
		}
		if part.FormName() == "photo" {
			if len(photos) >= s.cfg.MaxPhotos {
				return req, photos, models.Problemf(models.ErrInvalid, "too-many-photos", "an action takes at most %d photos", s.cfg.MaxPhotos)
			}
			m, _, _, err := s.receivePhoto(c.UserContext(), part, caseID, owner, models.MediaAfter, true)
			if m != nil {
				photos = append(photos, *m)
			}
			if err != nil {
				return req, photos, err
			}
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
		if err != nil || len(v) > maxFieldBytes {
			return req, photos, models.Problemf(models.ErrMalformed, "malformed-multipart", "field %q cannot be read or is too long", part.FormName())
		}
		fields[part.FormName()] = string(v)
	}
	req.Action, req.Note, req.Department, req.Resolution = fields["action"], fields["note"], fields["department"], fields["resolution"]
	req.Public = fields["public"] == "true"
	if v := fields["version"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return req, photos, models.Problemf(models.ErrInvalid, "invalid-version", "version %q is not a number", v)
		}
		req.Version = n
	}
	return req, photos, nil
}

// removePhotos deletes photos stored for a request that then failed. The request may be
// gone by then (a client that hung up); the photos must go all the same.
func (s *Server) removePhotos(ctx context.Context, photos []models.Media) {
	bg := context.WithoutCancel(ctx)
	for _, m := range photos {
		if err := s.store.Delete(bg, m.ObjectKey); err != nil {
			s.log.Warn("could not remove photo of a failed request", "key", m.ObjectKey, "err", err)
		}
	}
}

// actionChange checks an action request and turns it into a change of the case.
func (s *Server) actionChange(c *fiber.Ctx, caseID string, req ActionRequest, photos []models.Media) (models.Change, error) {
	ctx := c.UserContext()
	p := caller(c)
	action, ok := staffActions[req.Action]
	if !ok {
		return models.Change{}, models.Problemf(models.ErrInvalid, "unknown-action",
			"action %q is not one of accept, reject, start, resolve, close, transfer, assign, comment, dispatch, defer", req.Action)
	}
	if utf8.RuneCountInString(req.Note) > maxDescription {
		return models.Change{}, models.Problemf(models.ErrInvalid, "note-too-long", "note is over %d characters", maxDescription)
	}
	if action == models.ActionComment && strings.TrimSpace(req.Note) == "" {
		return models.Change{}, models.Problemf(models.ErrInvalid, "note-required", "a comment needs a note")
	}
	if len(photos) > 0 && action != models.ActionResolve && action != models.ActionComment {
		return models.Change{}, models.Problemf(models.ErrInvalid, "photos-not-allowed", "photos go with resolve or comment, not %s", action)
	}
	ch := models.Change{CaseID: caseID, Version: req.Version, Action: action, Actor: p.actor(),
		Note: req.Note, Public: req.Public, AssigneeID: req.Assignee, Until: req.Until, Media: photos,
		Resolution: models.Resolution(req.Resolution), DuplicateOf: req.DuplicateOf}
	if req.Department != "" {
		d, err := s.db.DepartmentByCode(ctx, p.JurisdictionID, req.Department)
		if err != nil {
			return models.Change{}, models.Problemf(models.ErrInvalid, "unknown-department", "no department %q in your city", req.Department)
		}
		ch.DepartmentID = &d.ID
	}
	return ch, nil
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
	case "rate":
		ch.Action = models.ActionRate
	default:
		return models.Problemf(models.ErrInvalid, "unknown-action", "action must be confirm, reopen or rate")
	}
	if req.Rating != 0 && ch.Action == models.ActionReopen {
		return models.Problemf(models.ErrInvalid, "rating-not-allowed", "a rating goes with confirm, or with rate once the case is closed; not with reopen")
	}
	if req.Rating != 0 && (req.Rating < 1 || req.Rating > 5) {
		return models.Problemf(models.ErrInvalid, "invalid-rating", "rating must be a whole number from 1 to 5")
	}
	if utf8.RuneCountInString(req.Comment) > maxDescription {
		return models.Problemf(models.ErrInvalid, "comment-too-long", "comment is over %d characters", maxDescription)
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

// placeFilters turns the category and area codes of a listing's query (?category=, ?area=)
// into the ids of the caller's city; an unknown code is a 422 naming it.
func (s *Server) placeFilters(ctx context.Context, c *fiber.Ctx, jurisdictionID string) (categoryID, areaID string, err error) {
	if code := c.Query("category"); code != "" {
		cat, err := s.db.CategoryByCode(ctx, jurisdictionID, code)
		if err != nil {
			return "", "", models.Problemf(models.ErrInvalid, "unknown-category", "no category %q in your city", code)
		}
		categoryID = cat.ID
	}
	if code := c.Query("area"); code != "" {
		a, err := s.db.AreaByCode(ctx, jurisdictionID, code)
		if err != nil {
			return "", "", models.Problemf(models.ErrInvalid, "unknown-area", "no area %q in your city", code)
		}
		areaID = a.ID
	}
	return categoryID, areaID, nil
}
