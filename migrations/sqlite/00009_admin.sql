-- +goose Up
-- An area left out of a city's configuration is retired, not deleted: cases keep pointing at
-- it (and stats group by it), but no new report is placed in it. Giving its code again
-- brings it back with the same id.
ALTER TABLE areas ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;

-- +goose Down
ALTER TABLE areas DROP COLUMN active;
