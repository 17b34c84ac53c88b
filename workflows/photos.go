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

// DefaultPhotoPixels is how many pixels a worker's photo tasks hold decoded at once by
// default (Config.PhotoPixels): one 12-megapixel camera photo, or dozens of small ones.
// Decoding, orienting and resizing take up to about 10 bytes a pixel at their peak (the
// decoded picture, a rotated copy, the resize's buffers), twice that before the garbage
// collector returns it: two 12-megapixel photos at once took `serve` past 200 MB.
const DefaultPhotoPixels = 16_000_000

// decodeWeight is what a photo of w×h pixels counts against the budget: its pixels, and the
// whole budget at most, so a photo larger than the budget (up to intake's 50-megapixel
// limit) is decoded alone rather than never. A photo without known dimensions counts as the
// whole budget.
func decodeWeight(w, h, budget int) int64 {
	px := int64(w) * int64(h)
	if px <= 0 || px > int64(budget) {
		return int64(budget)
	}
	return px
}

// decoding runs fn with the pixels of a w×h photo counted against the worker's budget,
// waiting until they fit.
func (w *Worker) decoding(ctx context.Context, width, height int, fn func() error) error {
	n := decodeWeight(width, height, w.cfg.PhotoPixels)
	if err := w.decodes.Acquire(ctx, n); err != nil {
		return err
	}
	defer w.decodes.Release(n)
	return fn()
}

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
	var displayJPEG, thumbJPEG []byte
	missing := false
	// The dimensions are intake's reading of the photo's header, which the decoder reads too.
	err = w.decoding(ctx, m.Width, m.Height, func() error {
		rc, _, err := w.cfg.Store.Get(ctx, m.ObjectKey)
		if errors.Is(err, storage.ErrNotFound) {
			missing = true
			return nil
		}
		if err != nil {
			return err // the store is away: retry later
		}
		defer rc.Close()
		displayJPEG, thumbJPEG, err = makeVersions(rc)
		return err
	})
	if missing {
		return db.PhotoProcessed(ctx, m.ID, p.OutboxID, nil, nil, "the original is missing from the object store", w.cfg.Now())
	}
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
	src := &readErrors{r: r}
	img, err := imaging.Decode(src, imaging.AutoOrientation(true))
	if src.err != nil {
		// The bytes did not arrive (the store went away mid-read): the decoder's verdict,
		// often "unknown format", says nothing of the photo. Try again later.
		return nil, nil, fmt.Errorf("read photo: %w", src.err)
	}
	if err != nil {
		return nil, nil, &undecodableError{err}
	}
	shown := imaging.Fit(img, displaySize, displaySize, imaging.Lanczos)
	// The thumbnail is made from the display version: the same picture at 320 pixels, for a
	// resize of 2 megapixels rather than of the whole photo again; and the whole photo, used
	// no more, can be collected while the versions are encoded.
	small := imaging.Fit(shown, thumbSize, thumbSize, imaging.Lanczos)
	if display, err = encodeJPEG(shown); err != nil {
		return nil, nil, fmt.Errorf("encode display version: %w", err)
	}
	if thumb, err = encodeJPEG(small); err != nil {
		return nil, nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return display, thumb, nil
}

// readErrors remembers the first error of its reader other than the end of the data.
type readErrors struct {
	r   io.Reader
	err error
}

func (e *readErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
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
