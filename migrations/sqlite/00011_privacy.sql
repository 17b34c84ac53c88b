-- +goose Up
-- Privacy (docs/privacy.md): each city's retention periods, when a photo's original was
-- deleted (its stripped versions stay), when a case's personal data was removed, and when a
-- citizen's account was erased at their request. The indexes serve the retention task: the
-- closed cases still holding personal data, and the originals still kept, by age and owner.
ALTER TABLE jurisdictions ADD COLUMN retention_originals_days INTEGER NOT NULL DEFAULT 365;
ALTER TABLE jurisdictions ADD COLUMN retention_closed_days INTEGER NOT NULL DEFAULT 730;
ALTER TABLE media ADD COLUMN original_deleted_at TIMESTAMP;
ALTER TABLE cases ADD COLUMN anonymised_at TIMESTAMP;
ALTER TABLE users ADD COLUMN erased_at TIMESTAMP;
CREATE INDEX cases_closed_personal ON cases (jurisdiction_id, closed_at)
    WHERE status = 'closed' AND anonymised_at IS NULL;
CREATE INDEX media_originals_kept ON media (created_at) WHERE original_deleted_at IS NULL;
CREATE INDEX media_originals_owner ON media (owner_id) WHERE original_deleted_at IS NULL;

-- +goose Down
DROP INDEX media_originals_owner;
DROP INDEX media_originals_kept;
DROP INDEX cases_closed_personal;
ALTER TABLE users DROP COLUMN erased_at;
ALTER TABLE cases DROP COLUMN anonymised_at;
ALTER TABLE media DROP COLUMN original_deleted_at;
ALTER TABLE jurisdictions DROP COLUMN retention_closed_days;
ALTER TABLE jurisdictions DROP COLUMN retention_originals_days;
