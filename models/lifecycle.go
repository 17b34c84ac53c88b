package models

import "slices"

// Status is where a case stands in its lifecycle (DESIGN.md, "Case lifecycle").
type Status string

// The statuses of a case. Open311 shows every one but StatusClosed as "open".
const (
	StatusSubmitted  Status = "submitted"
	StatusDispatched Status = "dispatched"
	StatusTriage     Status = "triage"
	StatusAccepted   Status = "accepted"
	StatusInProgress Status = "in_progress"
	StatusResolved   Status = "resolved"
	StatusClosed     Status = "closed"
)

// Resolution says how a closed case ended.
type Resolution string

// The resolutions of a closed case.
const (
	ResolutionFixed          Resolution = "fixed"
	ResolutionDuplicate      Resolution = "duplicate"
	ResolutionInvalid        Resolution = "invalid"
	ResolutionNotResponsible Resolution = "not_responsible"
	ResolutionNoAction       Resolution = "no_action"
)

// ValidResolution reports whether r is one of the resolutions.
func ValidResolution(r Resolution) bool {
	switch r {
	case ResolutionFixed, ResolutionDuplicate, ResolutionInvalid, ResolutionNotResponsible, ResolutionNoAction:
		return true
	}
	return false
}

// Action is something that happens to a case: a transition of its status, or a note or
// change that leaves the status where it is. Every action is recorded as a case event.
type Action string

// The actions on a case. Route, dispatch and confirm come from the system, a supervisor and
// the reporter; the rest are a case handler's.
const (
	ActionSubmit   Action = "submit"
	ActionRoute    Action = "route"
	ActionDispatch Action = "dispatch"
	ActionAccept   Action = "accept"
	ActionReject   Action = "reject"
	ActionStart    Action = "start"
	ActionResolve  Action = "resolve"
	ActionConfirm  Action = "confirm"
	ActionReopen   Action = "reopen"
	ActionClose    Action = "close"
	ActionTransfer Action = "transfer"
	ActionAssign   Action = "assign"
	ActionComment  Action = "comment"
	ActionDefer    Action = "defer" // 缓办: the deadline paused until a date, with a reason
	ActionRate     Action = "rate"  // the reporter's rating (1 to 5) of a closed case
	// The workers' own actions, from timers.
	ActionRemind   Action = "remind"   // most of the SLA has run
	ActionEscalate Action = "escalate" // the deadline passed: up one level
	ActionResume   Action = "resume"   // a deferral ended: the clock runs again
	ActionTimeout  Action = "timeout"  // the reporter did not answer within the window: closed as fixed
)

// working are the statuses in which a department is working a case against its deadline.
var working = []Status{StatusDispatched, StatusAccepted, StatusInProgress}

var openStatuses = []Status{StatusSubmitted, StatusDispatched, StatusTriage, StatusAccepted, StatusInProgress, StatusResolved}

// transition is one row of the lifecycle table: the statuses an action may start from and
// the status it leads to ("" keeps the status).
type transition struct {
	from []Status
	to   Status
}

// lifecycle is the whole case lifecycle of DESIGN.md in one table. Route leads to
// dispatched or, when no department can be found, to triage: Transition picks between the
// two by whether the target department is the triage desk.
var lifecycle = map[Action]transition{
	ActionRoute:    {from: []Status{StatusSubmitted}, to: StatusDispatched},
	ActionDispatch: {from: []Status{StatusTriage}, to: StatusDispatched},
	ActionAccept:   {from: []Status{StatusDispatched}, to: StatusAccepted},
	ActionReject:   {from: []Status{StatusDispatched}, to: StatusTriage},
	ActionStart:    {from: []Status{StatusAccepted}, to: StatusInProgress},
	ActionResolve:  {from: []Status{StatusAccepted, StatusInProgress}, to: StatusResolved},
	ActionConfirm:  {from: []Status{StatusResolved}, to: StatusClosed},
	ActionReopen:   {from: []Status{StatusResolved}, to: StatusDispatched},
	ActionClose:    {from: openStatuses, to: StatusClosed},
	ActionTransfer: {from: []Status{StatusDispatched, StatusAccepted, StatusInProgress}, to: StatusDispatched},
	ActionAssign:   {from: working},
	ActionComment:  {from: openStatuses},
	ActionDefer:    {from: working},
	ActionRemind:   {from: working},
	ActionEscalate: {from: working},
	ActionResume:   {from: working},
	ActionTimeout:  {from: []Status{StatusResolved}, to: StatusClosed},
	ActionRate:     {from: []Status{StatusClosed}},
}

// Allowed reports whether action may be taken on a case in status from, and the status it
// leads to (from itself for actions that keep the status).
func Allowed(action Action, from Status) (Status, bool) {
	t, ok := lifecycle[action]
	if !ok || !slices.Contains(t.from, from) {
		return "", false
	}
	if t.to == "" {
		return from, true
	}
	return t.to, true
}

// AllowedFrom lists the statuses action may start from, for error messages.
func AllowedFrom(action Action) []Status {
	return slices.Clone(lifecycle[action].from)
}

// IsOpen reports whether a case in status s still needs work.
func IsOpen(s Status) bool { return s != StatusClosed }
