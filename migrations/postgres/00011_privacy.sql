-- +goose NO TRANSACTION
-- +goose Up
-- Privacy (docs/privacy.md): each city's retention periods, when a photo's original was
-- deleted (its stripped versions stay), when a case's personal data was removed, and when a
-- citizen's account was erased at their request. The indexes serve the retention task: the
-- closed cases still holding personal data, and the originals still kept, by age and owner.
-- No transaction, so the indexes can be built CONCURRENTLY while the previous version still
-- serves; every statement is safe to run again if a run stopped half way.
ALTER TABLE jurisdictions ADD COLUMN IF NOT EXISTS retention_originals_days INTEGER NOT NULL DEFAULT 365;
ALTER TABLE jurisdictions ADD COLUMN IF NOT EXISTS retention_closed_days INTEGER NOT NULL DEFAULT 730;
ALTER TABLE media ADD COLUMN IF NOT EXISTS original_deleted_at TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS anonymised_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN IF NOT EXISTS erased_at TIMESTAMPTZ;
CREATE INDEX CONCURRENTLY IF NOT EXISTS cases_closed_personal ON cases (jurisdiction_id, closed_at)
    WHERE status = 'closed' AND anonymised_at IS NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS media_originals_kept ON media (created_at) WHERE original_deleted_at IS NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS media_originals_owner ON media (owner_id) WHERE original_deleted_at IS NULL;

-- +goose Down
DROP INDEX IF EXISTS media_originals_owner;
DROP INDEX IF EXISTS media_originals_kept;
DROP INDEX IF EXISTS cases_closed_personal;
ALTER TABLE users DROP COLUMN IF EXISTS erased_at;
ALTER TABLE cases DROP COLUMN IF EXISTS anonymised_at;
ALTER TABLE media DROP COLUMN IF EXISTS original_deleted_at;
ALTER TABLE jurisdictions DROP COLUMN IF EXISTS retention_closed_days;
ALTER TABLE jurisdictions DROP COLUMN IF EXISTS retention_originals_days;
