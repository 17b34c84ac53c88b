-- +goose Up
-- A direct upload: a photo the client PUTs straight to the object store through a presigned
-- URL, before it files the report that names it by id (media_ids). The row is the
-- reservation: whose it is, what it was declared to be, where it goes, and until when the
-- URL works. Attaching it to a report removes the row (the media row, with the same id,
-- takes over); the sweeper removes rows never attached, and their objects.
CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    -- A deleted user's pending uploads go with them; the sweeper then finds their objects
    -- without a row and removes them.
    owner_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    object_key    TEXT NOT NULL UNIQUE,
    content_type  TEXT NOT NULL,
    size          BIGINT NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX uploads_expires ON uploads (expires_at);
CREATE INDEX uploads_owner ON uploads (owner_id, expires_at);

-- +goose Down
DROP TABLE uploads;
