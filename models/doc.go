// Package models is City Eyes' data layer: the database rows, the case lifecycle, the city
// configuration and every query and transaction the API and the workers run.
//
// It imports nothing else of City Eyes. Callers get rows and a handful of error kinds
// (ErrNotFound, ErrConflict, ErrInvalid, ...), never driver errors; the API turns the kinds
// into HTTP statuses in one place.
//
// Every change to a case happens in one transaction that writes the case row, its event and
// an outbox row for the work it triggers, so that nothing accepted is ever lost: the outbox
// is handed to the task queue by a relay, and the task marks its row done when it finishes.
package models
