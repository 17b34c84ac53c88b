-- +goose Up
-- Every photo gets versions made by a task: auto-oriented, re-encoded without EXIF (GPS and
-- device data are personal), for display and as a thumbnail. Only these ever leave the
-- server to anyone but staff; the original stays private.
ALTER TABLE media ADD COLUMN display_key TEXT;
ALTER TABLE media ADD COLUMN thumb_key TEXT;
ALTER TABLE media ADD COLUMN processed_at TIMESTAMP;
ALTER TABLE media ADD COLUMN process_error TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE media DROP COLUMN process_error;
ALTER TABLE media DROP COLUMN processed_at;
ALTER TABLE media DROP COLUMN thumb_key;
ALTER TABLE media DROP COLUMN display_key;
