package models

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Direct uploads: a client asks for a presigned URL, PUTs a photo straight to the object
// store, and names it by id in its report. The row is only the reservation; attaching the
// upload to a report turns it into a media row with the same id.
const (
	// UploadPrefix starts the object key of every direct upload. The sweeper removes what is
	// under it and has no row.
	UploadPrefix = "uploads/"
	// UploadTTL is how long an upload URL works.
	UploadTTL = 15 * time.Minute
	// UploadKeep is how long after its URL expired an upload may still be named in a
	// report (a phone offline after uploading); after that the sweeper removes it.
	UploadKeep = 24 * time.Hour
)

// Upload is a direct upload not yet attached to a report.
type Upload struct {
	ID          string
	OwnerID     string
	ObjectKey   string
	ContentType string // as declared when the URL was asked for
	Size        int64  // as declared
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// CreateUpload records a reservation for a direct upload. It is a transaction of its own so
// that on SQLite it queues with the other writers (InTx) instead of polling for the lock.
func (db *DB) CreateUpload(ctx context.Context, u *Upload) error {
	u.ExpiresAt, u.CreatedAt = u.ExpiresAt.UTC(), u.CreatedAt.UTC()
	if db.dialect != SQLite {
		return translate(db.q(ctx).Create(u).Error)
	}
	return db.InTx(ctx, func(tx *DB) error { return tx.q(ctx).Create(u).Error })
}

// UploadByID returns a pending upload, or ErrNotFound (also for an id that is not a UUID).
func (db *DB) UploadByID(ctx context.Context, id string) (*Upload, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, fmt.Errorf("%w: upload %q", ErrNotFound, id)
	}
	var u Upload
	if err := db.q(ctx).Where("id = ?", id).Take(&u).Error; err != nil {
		return nil, translate(err)
	}
	return &u, nil
}

// consumeUploads removes the reservations of uploads a new case takes as its photos, in the
// case's transaction. Each must still be there and the reporter's: an upload attached by a
// report that committed first is gone, and then this report is refused as a whole.
func (db *DB) consumeUploads(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	res := db.q(ctx).Where("owner_id = ? AND id IN ?", owner, ids).Delete(&Upload{})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != int64(len(ids)) {
		return Problemf(ErrConflict, "media-already-attached",
			"a photo in media_ids was attached to another report at the same moment; upload it again for this one")
	}
	return nil
}

// StaleUploads returns up to limit uploads whose URL expired before the given time, oldest
// first.
func (db *DB) StaleUploads(ctx context.Context, before time.Time, limit int) ([]Upload, error) {
	var us []Upload
	err := db.q(ctx).Where("expires_at < ?", before.UTC()).Order("expires_at, id").Limit(limit).Find(&us).Error
	return us, translate(err)
}

// DeleteUpload removes an upload's reservation; a missing one is not an error.
func (db *DB) DeleteUpload(ctx context.Context, id string) error {
	return translate(db.q(ctx).Where("id = ?", id).Delete(&Upload{}).Error)
}

// UploadKeys tells which of the given object keys belong to a pending upload.
func (db *DB) UploadKeys(ctx context.Context, keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(keys) == 0 {
		return out, nil
	}
	var found []string
	if err := db.q(ctx).Model(&Upload{}).Where("object_key IN ?", keys).Pluck("object_key", &found).Error; err != nil {
		return nil, translate(err)
	}
	for _, k := range found {
		out[k] = true
	}
	return out, nil
}

// CaseMediaKeys lists the object keys of the photos of the given cases (their originals;
// the versions the photo task makes share an original's name up to its extension).
func (db *DB) CaseMediaKeys(ctx context.Context, caseIDs []string) ([]string, error) {
	var keys []string
	if len(caseIDs) == 0 {
		return keys, nil
	}
	err := db.q(ctx).Model(&Media{}).Where("case_id IN ?", caseIDs).Pluck("object_key", &keys).Error
	return keys, translate(err)
}
