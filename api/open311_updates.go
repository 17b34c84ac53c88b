package api

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// extendedStatus is mySociety's extended status for a case in status st (closed with
// resolution res), the one FixMyStreet reads. The triage desk shows as "open": FixMyStreet
// hides a report "for triage" from the public.
func extendedStatus(st models.Status, res models.Resolution) string {
	switch st {
	case models.StatusAccepted:
		return "action_scheduled"
	case models.StatusInProgress:
		return "in_progress"
	case models.StatusResolved:
		return "fixed"
	case models.StatusClosed:
		switch res {
		case models.ResolutionDuplicate:
			return "duplicate"
		case models.ResolutionNotResponsible:
			return "not_councils_responsibility"
		case models.ResolutionNoAction:
			return "no_further_action"
		case models.ResolutionInvalid:
			return "closed"
		}
		return "fixed"
	}
	return "open"
}

// What a posted update's status says of the case, as its client sees it.
const (
	updateOpen   = "open"   // still open (OPEN, and the extended open ones)
	updateReopen = "reopen" // asked to be reopened (REOPEN)
	updateFixed  = "fixed"  // fixed or closed (FIXED, CLOSED)
	updateOther  = "other"  // closed for another reason
)

// updateStatuses are the statuses a client may post (mySociety's status_extended_upper).
var updateStatuses = map[string]string{
	"OPEN": updateOpen, "INVESTIGATING": updateOpen, "IN_PROGRESS": updateOpen, "ACTION_SCHEDULED": updateOpen,
	"FOR_TRIAGE": updateOpen, "REOPEN": updateReopen, "FIXED": updateFixed, "CLOSED": updateFixed,
	"DUPLICATE": updateOther, "NOT_COUNCILS_RESPONSIBILITY": updateOther, "NO_FURTHER_ACTION": updateOther,
	"INTERNAL_REFERRAL": updateOther,
}

// open311ListUpdates lists a city's updates (GET servicerequestupdates.{format}): the
// public events of its cases' timelines (status changes and public comments) between
// start_date and end_date, oldest first, with the same defaults and limits as GET requests.
// Updates a client posted are listed too, under the update_id it was given, so a client
// that remembers its own (FixMyStreet does) does not take them for news.
func (s *Server) open311ListUpdates(c *fiber.Ctx) error {
	format, err := open311Format(c)
	if err != nil {
		return err
	}
	p := queryParams(c)
	j, err := s.open311City(c, p, nil)
	if err != nil {
		return err
	}
	loc := open311Location(j)
	from, to, err := open311Window(p, s.now(), loc)
	if err != nil {
		return err
	}
	offset, limit, err := open311Page(p)
	if err != nil {
		return err
	}
	evs, err := s.db.PublicUpdates(c.UserContext(), j.ID, from, to, offset, limit)
	if err != nil {
		return err
	}
	out := make([]Open311Update, 0, len(evs))
	for i := range evs {
		ev := &evs[i]
		var res models.Resolution
		if ev.ToStatus == models.StatusClosed {
			res = models.EventResolution(ev)
		}
		out = append(out, Open311Update{UpdateID: ev.ID, ServiceRequestID: ev.CaseID,
			Status: extendedStatus(ev.ToStatus, res), ExternalStatusCode: string(ev.ToStatus),
			Description: ev.Note, UpdatedDatetime: open311Time(ev.CreatedAt, loc)})
	}
	return writeOpen311List(c, fiber.StatusOK, format, "service_request_updates", out)
}

// open311PostUpdate takes an update from a client (POST servicerequestupdates.{format}):
// how a FixMyStreet site that is the citizens' front end for a city passes on their
// comments, reopen requests and confirmations. On a resolved case, the reporter (the same
// email as the request's) reopens it with REOPEN, or with OPEN written after it was
// resolved, and confirms the fix with FIXED or CLOSED: the lifecycle's reopen and confirm,
// as from the app. Anything else with a description is a public comment on the timeline,
// from the system on the client's behalf (the citizen's account as its actor when an email
// or a name came with it). A closed case's timeline takes nothing more: an update to it is
// acknowledged and kept aside, unless it asks to reopen, which is refused. A client's own
// update_id makes a retry return the first answer.
func (s *Server) open311PostUpdate(c *fiber.Ctx) error {
	ctx := c.UserContext()
	format, err := open311Format(c)
	if err != nil {
		return err
	}
	in, err := s.readOpen311Form(c, "", false)
	if err != nil {
		return err
	}
	p := in.params
	key, err := s.open311Key(c, p)
	if err != nil {
		return err
	}
	j, err := s.open311City(c, p, key)
	if err != nil {
		return err
	}
	if j.ID != key.JurisdictionID {
		return open311Forbidden("this api_key writes to jurisdiction %s, not %s", key.JurisdictionID, j.ID)
	}
	id := p.get("service_request_id")
	if id == "" {
		return open311Invalid("service_request_id was not provided")
	}
	cs, err := s.open311Case(c, p, id, "")
	if err != nil {
		return err
	}
	if cs.JurisdictionID != key.JurisdictionID {
		return open311NotFound("service_request_id %q was not found", id)
	}
	status := strings.ToUpper(strings.ReplaceAll(p.get("status"), " ", "_"))
	if status == "" {
		return open311Invalid("status was not provided: OPEN, CLOSED, or one of mySociety's extended statuses")
	}
	kind, ok := updateStatuses[status]
	if !ok {
		return open311Invalid("status %q is not OPEN, CLOSED, or one of mySociety's extended statuses", p.get("status"))
	}
	now := s.now()
	when := now
	if v := p.get("updated_datetime"); v != "" {
		if when, err = parseOpen311Time("updated_datetime", v, open311Location(j)); err != nil {
			return err
		}
	}
	desc := p.get("description")
	if err := checkText("description", desc, open311MaxText); err != nil {
		return err
	}
	if err := checkMediaURL(p.get("media_url")); err != nil {
		return err
	}
	external := p.get("update_id")
	if external == "" {
		external = p.get("update_id_ext")
	}
	if err := checkText("update_id", external, open311MaxNameLen); err != nil {
		return err
	}
	who, err := open311Reporter(p)
	if err != nil {
		return err
	}
	reply := func(id string) error {
		return writeOpen311List(c, fiber.StatusOK, format, "service_request_updates", []Open311UpdateCreated{{UpdateID: id}})
	}
	if external != "" {
		prior, err := s.db.FindOpen311Update(ctx, cs.ID, external)
		if err == nil {
			return reply(prior.ID)
		}
		if !errors.Is(err, models.ErrNotFound) {
			return err
		}
	}
	var author *string
	if who != (models.ReporterDetails{}) {
		u, err := s.db.EnsureOpen311Reporter(ctx, who, now)
		if err != nil {
			return err
		}
		author = &u.ID
	}
	reporter := false
	if who.Email != "" {
		if ct, err := s.db.Open311ContactOf(ctx, cs.ReporterID); err == nil && ct.Email != nil {
			reporter = strings.EqualFold(*ct.Email, who.Email)
		}
	}
	ch := models.Change{CaseID: cs.ID, Note: desc}
	asReporter := models.Actor{ID: &cs.ReporterID, Role: models.RoleCitizen, JurisdictionID: cs.JurisdictionID}
	resolved := cs.Status == models.StatusResolved
	switch {
	case resolved && reporter && (kind == updateReopen || kind == updateOpen && cs.ResolvedAt != nil && when.After(*cs.ResolvedAt)):
		ch.Action, ch.Actor = models.ActionReopen, asReporter
	case resolved && reporter && kind == updateFixed:
		ch.Action, ch.Actor = models.ActionConfirm, asReporter
	case cs.Status == models.StatusClosed:
		if kind == updateReopen {
			return open311Invalid("request %s is closed and can no longer be reopened: report the problem again", cs.ID)
		}
	case desc != "":
		ch.Action, ch.Public = models.ActionComment, true
		ch.Actor = models.Actor{ID: author, Role: models.RoleSystem, JurisdictionID: cs.JurisdictionID}
	}
	u := &models.Open311Update{ID: models.NewID(), CaseID: cs.ID, Client: key.Name, AuthorID: author, Status: status, CreatedAt: now.UTC()}
	if external != "" {
		u.ExternalID = &external
	}
	if ch.Action != "" {
		_, ev, err := s.db.Transition(ctx, ch, now)
		if err != nil {
			return err
		}
		u.ID, u.EventID = ev.ID, &ev.ID
	} else {
		u.Note = desc
	}
	if err := s.db.SaveOpen311Update(ctx, u); err != nil {
		if errors.Is(err, models.ErrConflict) && external != "" {
			// The same update was posted twice at once; the first one stands.
			if prior, perr := s.db.FindOpen311Update(ctx, cs.ID, external); perr == nil {
				s.log.Warn("open311: an update posted twice at once", "case", cs.ID, "update_id", external)
				return reply(prior.ID)
			}
		}
		return err
	}
	return reply(u.ID)
}
