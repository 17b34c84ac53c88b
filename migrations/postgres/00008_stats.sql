-- +goose Up
-- Supervisors' KPIs read a city's cases by the time of each kind of event (received,
-- dispatched, closed, due, first response) and a few rare events from the log (reopens,
-- deferrals, ratings); these indexes make each a range scan. Digests are kept once per
-- supervisor and period, with their pushes once per device.

CREATE INDEX cases_jurisdiction_dispatched ON cases (jurisdiction_id, dispatched_at);
CREATE INDEX cases_jurisdiction_closed ON cases (jurisdiction_id, closed_at);
CREATE INDEX cases_jurisdiction_due ON cases (jurisdiction_id, due_at);
CREATE INDEX cases_jurisdiction_responded ON cases (jurisdiction_id, first_response_at);
-- The backlog at a past moment counts the cases still open now, plus those closed since.
CREATE INDEX cases_open_city_created ON cases (jurisdiction_id, created_at) WHERE status <> 'closed';
CREATE INDEX case_events_rework ON case_events (case_id) WHERE type IN ('reopen', 'defer');
CREATE INDEX case_events_ratings ON case_events (created_at) WHERE type IN ('rate', 'confirm');

CREATE TABLE digests (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users(id),
    jurisdiction_id  TEXT NOT NULL REFERENCES jurisdictions(id),
    kind             TEXT NOT NULL,
    period_start     TIMESTAMPTZ NOT NULL,
    period_end       TIMESTAMPTZ NOT NULL,
    figures          JSONB NOT NULL,
    read_at          TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, kind, period_start)
);
CREATE INDEX digests_inbox ON digests (user_id, created_at, id);

CREATE TABLE digest_deliveries (
    id              UUID PRIMARY KEY,
    digest_id       UUID NOT NULL REFERENCES digests(id),
    device_id       UUID NOT NULL REFERENCES devices(id),
    state           TEXT NOT NULL,
    fcm_message_id  TEXT NOT NULL DEFAULT '',
    error           TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (digest_id, device_id)
);

-- +goose Down
DROP TABLE digest_deliveries;
DROP TABLE digests;
DROP INDEX case_events_ratings;
DROP INDEX case_events_rework;
DROP INDEX cases_open_city_created;
DROP INDEX cases_jurisdiction_responded;
DROP INDEX cases_jurisdiction_due;
DROP INDEX cases_jurisdiction_closed;
DROP INDEX cases_jurisdiction_dispatched;
