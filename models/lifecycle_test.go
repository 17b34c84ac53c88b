package models_test

import (
	"testing"

	"github.com/city-eyes/cityeyes/models"
)

// TestLifecycle walks the table of DESIGN.md: every action from every status is either the
// transition the design draws or refused.
func TestLifecycle(t *testing.T) {
	all := []models.Status{models.StatusSubmitted, models.StatusDispatched, models.StatusTriage, models.StatusAccepted,
		models.StatusInProgress, models.StatusResolved, models.StatusClosed}
	want := map[models.Action]map[models.Status]models.Status{
		models.ActionRoute:    {models.StatusSubmitted: models.StatusDispatched},
		models.ActionDispatch: {models.StatusTriage: models.StatusDispatched},
		models.ActionAccept:   {models.StatusDispatched: models.StatusAccepted},
		models.ActionReject:   {models.StatusDispatched: models.StatusTriage},
		models.ActionStart:    {models.StatusAccepted: models.StatusInProgress},
		models.ActionResolve:  {models.StatusAccepted: models.StatusResolved, models.StatusInProgress: models.StatusResolved},
		models.ActionConfirm:  {models.StatusResolved: models.StatusClosed},
		models.ActionReopen:   {models.StatusResolved: models.StatusDispatched},
		models.ActionClose: {models.StatusSubmitted: models.StatusClosed, models.StatusDispatched: models.StatusClosed,
			models.StatusTriage: models.StatusClosed, models.StatusAccepted: models.StatusClosed,
			models.StatusInProgress: models.StatusClosed, models.StatusResolved: models.StatusClosed},
		models.ActionTransfer: {models.StatusDispatched: models.StatusDispatched, models.StatusAccepted: models.StatusDispatched,
			models.StatusInProgress: models.StatusDispatched},
		models.ActionAssign: {models.StatusDispatched: models.StatusDispatched, models.StatusAccepted: models.StatusAccepted,
			models.StatusInProgress: models.StatusInProgress},
		models.ActionDefer:    {models.StatusDispatched: models.StatusDispatched, models.StatusAccepted: models.StatusAccepted, models.StatusInProgress: models.StatusInProgress},
		models.ActionRemind:   {models.StatusDispatched: models.StatusDispatched, models.StatusAccepted: models.StatusAccepted, models.StatusInProgress: models.StatusInProgress},
		models.ActionEscalate: {models.StatusDispatched: models.StatusDispatched, models.StatusAccepted: models.StatusAccepted, models.StatusInProgress: models.StatusInProgress},
		models.ActionResume:   {models.StatusDispatched: models.StatusDispatched, models.StatusAccepted: models.StatusAccepted, models.StatusInProgress: models.StatusInProgress},
		models.ActionTimeout:  {models.StatusResolved: models.StatusClosed},
		models.ActionRate:     {models.StatusClosed: models.StatusClosed},
		models.ActionComment: {models.StatusSubmitted: models.StatusSubmitted, models.StatusDispatched: models.StatusDispatched,
			models.StatusTriage: models.StatusTriage, models.StatusAccepted: models.StatusAccepted,
			models.StatusInProgress: models.StatusInProgress, models.StatusResolved: models.StatusResolved},
	}
	for action, froms := range want {
		for _, from := range all {
			got, ok := models.Allowed(action, from)
			to, allowed := froms[from]
			if ok != allowed || got != to {
				t.Errorf("%s from %s: got (%q, %v), want (%q, %v)", action, from, got, ok, to, allowed)
			}
		}
	}
	for _, from := range all {
		if _, ok := models.Allowed("explode", from); ok {
			t.Errorf("an unknown action was allowed from %s", from)
		}
	}
}
