-- +goose Up
-- Supervisors' KPIs over a year of a large city read a rollup rather than every case
-- (docs/kpis.md, "How the figures are kept"). A case's facts are what the KPIs read of it;
-- three of them were only in its event log, so the case row now keeps them too: whether it
-- was ever reopened or deferred, and its rating and when it was given.
ALTER TABLE cases ADD COLUMN reopened BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE cases ADD COLUMN deferred BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE cases ADD COLUMN rating SMALLINT;
ALTER TABLE cases ADD COLUMN rated_at TIMESTAMPTZ;
UPDATE cases SET reopened = true WHERE id IN (SELECT case_id FROM case_events WHERE type = 'reopen');
UPDATE cases SET deferred = true WHERE id IN (SELECT case_id FROM case_events WHERE type = 'defer');
UPDATE cases c SET rating = CAST(e.data->>'rating' AS SMALLINT), rated_at = e.created_at
    FROM case_events e
    WHERE e.case_id = c.id AND e.type IN ('rate', 'confirm') AND e.data->>'rating' IS NOT NULL;
-- Overdue is a state now, counted from the cases being worked whose deadline passed: a
-- covering index keeps that an index-only scan rather than a visit to every one of them.
CREATE INDEX cases_working_due ON cases (jurisdiction_id, due_at) INCLUDE (department_id, category_id, area_id)
    WHERE status IN ('dispatched', 'accepted', 'in_progress');
-- A period's first and last part days are counted from the cases themselves.
CREATE INDEX cases_jurisdiction_rated ON cases (jurisdiction_id, rated_at) WHERE rated_at IS NOT NULL;

-- One row per city, grouping (1 department, 2 category, 3 area), local day and group ('' for
-- none): the counts of what happened that day, and the histograms of hours to close and to
-- first response of the cases closed or first answered that day (models/rollup.go).
CREATE TABLE stats_days (
    jurisdiction_id  TEXT NOT NULL REFERENCES jurisdictions(id),
    dim              SMALLINT NOT NULL,
    day              INTEGER NOT NULL,
    key              TEXT NOT NULL,
    received         BIGINT NOT NULL DEFAULT 0,
    received_closed  BIGINT NOT NULL DEFAULT 0,
    dispatched       BIGINT NOT NULL DEFAULT 0,
    closed           BIGINT NOT NULL DEFAULT 0,
    reopened         BIGINT NOT NULL DEFAULT 0,
    due              BIGINT NOT NULL DEFAULT 0,
    closed_on_time   BIGINT NOT NULL DEFAULT 0,
    ratings          BIGINT NOT NULL DEFAULT 0,
    rating_sum       BIGINT NOT NULL DEFAULT 0,
    close_hours      BYTEA NOT NULL,
    response_hours   BYTEA NOT NULL,
    PRIMARY KEY (jurisdiction_id, dim, day, key)
);

-- A case's facts before (-1) and after (+1) each change, written in the change's own
-- transaction and folded into stats_days by a periodic task; the KPIs read both.
CREATE TABLE stats_changes (
    id                 BIGSERIAL PRIMARY KEY,
    jurisdiction_id    TEXT NOT NULL,
    sign               SMALLINT NOT NULL,
    department_id      UUID,
    category_id        UUID NOT NULL,
    area_id            UUID,
    closed             BOOLEAN NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    dispatched_at      TIMESTAMPTZ,
    first_response_at  TIMESTAMPTZ,
    resolved_at        TIMESTAMPTZ,
    closed_at          TIMESTAMPTZ,
    due_at             TIMESTAMPTZ,
    reopened           BOOLEAN NOT NULL,
    deferred           BOOLEAN NOT NULL,
    rating             SMALLINT,
    rated_at           TIMESTAMPTZ
);
CREATE INDEX stats_changes_city ON stats_changes (jurisdiction_id, id);

-- Which cities' rollups are built, and in which time zone (the days are local days).
CREATE TABLE stats_built (
    jurisdiction_id  TEXT PRIMARY KEY REFERENCES jurisdictions(id),
    timezone         TEXT NOT NULL,
    built_at         TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE stats_built;
DROP TABLE stats_changes;
DROP TABLE stats_days;
DROP INDEX cases_jurisdiction_rated;
DROP INDEX cases_working_due;
ALTER TABLE cases DROP COLUMN rated_at;
ALTER TABLE cases DROP COLUMN rating;
ALTER TABLE cases DROP COLUMN deferred;
ALTER TABLE cases DROP COLUMN reopened;
