-- +goose Up
-- The request that caused a task, so that the worker's log lines of that task (and of the
-- tasks it causes in turn) carry the request id of the API's log lines. Additive: the
-- previous release's code neither reads nor writes it, and the default fills old rows.
ALTER TABLE outbox ADD COLUMN request_id TEXT NOT NULL DEFAULT '';

-- Metrics read at scrape time: the oldest due outbox row that is not done (the relay's lag),
-- and the count of SLA breaches (escalation events). Both partial, so both stay small.
CREATE INDEX outbox_due ON outbox (process_at) WHERE done_at IS NULL;
CREATE INDEX case_events_escalate ON case_events (created_at) WHERE type = 'escalate';

-- +goose Down
DROP INDEX case_events_escalate;
DROP INDEX outbox_due;
ALTER TABLE outbox DROP COLUMN request_id;
