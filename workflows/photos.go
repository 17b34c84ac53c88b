package workflows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"strings"

	"github.com/disintegration/imaging"
	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// The versions every photo gets. Re-encoding is what strips the EXIF block (GPS position,
// camera, time): Go's JPEG encoder writes none.
const (
	displaySize = 1600 // longest side, in pixels
	thumbSize   = 320
	jpegQuality = 85
)

// decodeSlots bounds how many photos are decoded at once: a decoded photo takes 4 bytes a
// pixel (up to 200 MB at the intake limit of 50 megapixels), so a burst of uploads must not
// decode ten at a time.
var decodeSlots = make(chan struct{}, 2)

// handlePhoto makes a photo's display and thumbnail versions: oriented as the camera meant
// (the EXIF orientation tag), re-encoded without EXIF. A photo that cannot be decoded is
// recorded as such and not retried; the original stays for staff to look at.
func (w *Worker) handlePhoto(ctx context.Context, t *asynq.Task) error {
	var p models.PhotoPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("photo payload: %v: %w", err, asynq.SkipRetry)
	}
	db := w.cfg.DB
	if done, err := db.OutboxDone(ctx, p.OutboxID); err != nil || done {
		return err
	}
	m, err := db.MediaByID(ctx, p.MediaID)
	if err != nil {
		return err
	}
	if m.ProcessedAt != nil {
		return db.MarkOutboxDone(ctx, p.OutboxID, w.cfg.Now())
	}
	select {
	case decodeSlots <- struct{}{}:
		defer func() { <-decodeSlots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	rc, _, err := w.cfg.Store.Get(ctx, m.ObjectKey)
	if errors.Is(err, storage.ErrNotFound) {
		return db.PhotoProcessed(ctx, m.ID, p.OutboxID, nil, nil, "the original is missing from the object store", w.cfg.Now())
	}
	if err != nil {
		return err // the store is away: retry later
	}
	img, err := imaging.Decode(rc, imaging.AutoOrientation(true))
	rc.Close()
	if err != nil {
		return db.PhotoProcessed(ctx, m.ID, p.OutboxID, nil, nil, "the photo cannot be decoded: "+err.Error(), w.cfg.Now())
	}
	base := strings.TrimSuffix(m.ObjectKey, pathExt(m.ObjectKey))
	display, err := w.putVersion(ctx, base+"-display.jpg", imaging.Fit(img, displaySize, displaySize, imaging.Lanczos))
	if err != nil {
		return err
	}
	thumb, err := w.putVersion(ctx, base+"-thumb.jpg", imaging.Fit(img, thumbSize, thumbSize, imaging.Lanczos))
	if err != nil {
		return err
	}
	return db.PhotoProcessed(ctx, m.ID, p.OutboxID, &display, &thumb, "", w.cfg.Now())
}

// putVersion encodes a version as JPEG and stores it; writing the same key again (a retry)
// replaces it with the same picture.
func (w *Worker) putVersion(ctx context.Context, key string, img image.Image) (string, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: jpegQuality}); err != nil {
		return "", fmt.Errorf("encode %s: %w", key, err)
	}
	if _, err := w.cfg.Store.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), "image/jpeg"); err != nil {
		return "", err
	}
	return key, nil
}

func pathExt(key string) string {
	if i := strings.LastIndexByte(key, '.'); i > strings.LastIndexByte(key, '/') {
		return key[i:]
	}
	return ""
}
