-- +goose Up
-- Case handlers' work: deadlines counted on each city's working calendar, deferral (the
-- clock paused with what was left of it), escalation levels, the reporter's confirmation
-- window, an optional "after" photo per category, and staff refresh tokens.

ALTER TABLE jurisdictions ADD COLUMN calendar TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jurisdictions ADD COLUMN confirm_window_hours INTEGER NOT NULL DEFAULT 168;
ALTER TABLE jurisdictions ADD COLUMN escalation_hours INTEGER NOT NULL DEFAULT 24;

ALTER TABLE categories ADD COLUMN after_photo TEXT NOT NULL DEFAULT 'optional';

ALTER TABLE cases ADD COLUMN deferred_until TIMESTAMP;
ALTER TABLE cases ADD COLUMN remaining_seconds BIGINT;
ALTER TABLE cases ADD COLUMN escalation_level INTEGER NOT NULL DEFAULT 0;

CREATE INDEX cases_assignee ON cases (assignee_id, status, due_at, id);

-- The work queue reads open cases only, a few percent of a year's: partial indexes over
-- them, one per sort order and scope (a department's queue, a supervisor's whole city),
-- keep a page of the queue a short index range scan however many cases the city has closed.
CREATE INDEX cases_open_dept_due ON cases (department_id, due_at, id)
    WHERE status IN ('dispatched', 'triage', 'accepted', 'in_progress');
CREATE INDEX cases_open_dept_age ON cases (department_id, created_at, id)
    WHERE status IN ('dispatched', 'triage', 'accepted', 'in_progress');
CREATE INDEX cases_open_dept_priority ON cases (department_id, priority DESC, created_at, id)
    WHERE status IN ('dispatched', 'triage', 'accepted', 'in_progress');
CREATE INDEX cases_open_city_due ON cases (jurisdiction_id, due_at, id)
    WHERE status IN ('dispatched', 'triage', 'accepted', 'in_progress');
CREATE INDEX cases_open_city_age ON cases (jurisdiction_id, created_at, id)
    WHERE status IN ('dispatched', 'triage', 'accepted', 'in_progress');

-- Staff inbox entries (reminders, escalations) read differently from a reporter's.
ALTER TABLE notifications ADD COLUMN event_type TEXT NOT NULL DEFAULT '';

-- A refresh token is kept only as its SHA-256; using one replaces it (rotation).
CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    token_sha256 TEXT NOT NULL UNIQUE,
    expires_at   TIMESTAMP NOT NULL,
    used_at      TIMESTAMP,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- +goose Down
DROP TABLE refresh_tokens;
ALTER TABLE notifications DROP COLUMN event_type;
DROP INDEX cases_open_city_age;
DROP INDEX cases_open_city_due;
DROP INDEX cases_open_dept_priority;
DROP INDEX cases_open_dept_age;
DROP INDEX cases_open_dept_due;
DROP INDEX cases_assignee;
ALTER TABLE cases DROP COLUMN escalation_level;
ALTER TABLE cases DROP COLUMN remaining_seconds;
ALTER TABLE cases DROP COLUMN deferred_until;
ALTER TABLE categories DROP COLUMN after_photo;
ALTER TABLE jurisdictions DROP COLUMN escalation_hours;
ALTER TABLE jurisdictions DROP COLUMN confirm_window_hours;
ALTER TABLE jurisdictions DROP COLUMN calendar;
