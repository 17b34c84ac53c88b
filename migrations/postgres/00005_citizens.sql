-- +goose Up
-- "Me too": a citizen supports someone else's report once, and follows it from then on.
CREATE TABLE supporters (
    case_id     UUID NOT NULL REFERENCES cases(id),
    user_id     UUID NOT NULL REFERENCES users(id),
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (case_id, user_id)
);
CREATE INDEX supporters_user ON supporters (user_id);

-- Nearby open reports are found by a bounding box on the point, then by distance.
CREATE INDEX cases_open_point ON cases (lat, lon) WHERE status <> 'closed';

-- Where a report's point came from: the phone's position, or the GPS tags of its photo.
ALTER TABLE cases ADD COLUMN location_source TEXT NOT NULL DEFAULT 'device';

-- A sensitive category's reports show only an approximate place in public; a category's
-- likely duplicates are its open reports within a radius and a time window.
ALTER TABLE categories ADD COLUMN sensitive BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE categories ADD COLUMN duplicate_radius_m INTEGER NOT NULL DEFAULT 50;
ALTER TABLE categories ADD COLUMN duplicate_window_hours INTEGER NOT NULL DEFAULT 720;

-- Unread entries of an inbox.
CREATE INDEX notifications_unread ON notifications (user_id, created_at) WHERE read_at IS NULL;

-- +goose Down
DROP INDEX notifications_unread;
DROP INDEX cases_open_point;
ALTER TABLE cases DROP COLUMN location_source;
ALTER TABLE categories DROP COLUMN duplicate_window_hours;
ALTER TABLE categories DROP COLUMN duplicate_radius_m;
ALTER TABLE categories DROP COLUMN sensitive;
DROP TABLE supporters;
