package workflows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
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
	displayJPEG, thumbJPEG, err := makeVersions(rc)
	rc.Close()
	var bad *undecodableError
	if errors.As(err, &bad) {
		return db.PhotoProcessed(ctx, m.ID, p.OutboxID, nil, nil, "the photo cannot be decoded: "+bad.err.Error(), w.cfg.Now())
	}
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(m.ObjectKey, pathExt(m.ObjectKey))
	display, err := w.putVersion(ctx, base+"-display.jpg", displayJPEG)
	if err != nil {
		return err
	}
	thumb, err := w.putVersion(ctx, base+"-thumb.jpg", thumbJPEG)
	if err != nil {
		return err
	}
	return db.PhotoProcessed(ctx, m.ID, p.OutboxID, &display, &thumb, "", w.cfg.Now())
}

// undecodableError is makeVersions' error for a photo that cannot be decoded.
type undecodableError struct{ err error }

func (e *undecodableError) Error() string { return "decode photo: " + e.err.Error() }

// makeVersions is the pure part of handlePhoto: it decodes a photo, orients it as the camera
// meant (the EXIF orientation tag) and encodes its display and thumbnail versions as JPEG,
// which carry no EXIF. A photo that cannot be decoded gives an *undecodableError. The
// caller bounds the pixels (intake refuses photos over its limit before they are stored).
func makeVersions(r io.Reader) (display, thumb []byte, err error) {
	img, err := imaging.Decode(r, imaging.AutoOrientation(true))
	if err != nil {
		return nil, nil, &undecodableError{err}
	}
	if display, err = encodeJPEG(imaging.Fit(img, displaySize, displaySize, imaging.Lanczos)); err != nil {
		return nil, nil, fmt.Errorf("encode display version: %w", err)
	}
	if thumb, err = encodeJPEG(imaging.Fit(img, thumbSize, thumbSize, imaging.Lanczos)); err != nil {
		return nil, nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return display, thumb, nil
}

func encodeJPEG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: jpegQuality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// putVersion stores an encoded version; writing the same key again (a retry) replaces it
// with the same picture.
func (w *Worker) putVersion(ctx context.Context, key string, b []byte) (string, error) {
	if _, err := w.cfg.Store.Put(ctx, key, bytes.NewReader(b), int64(len(b)), "image/jpeg"); err != nil {
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
