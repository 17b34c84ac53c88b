package api

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// Direct uploads: a phone on a slow network PUTs a photo straight to the object store
// (MinIO, or the local store through PUT /files/*) while the API only hands out the URL, and
// then names the photo by id in its report. Nothing the client says about the bytes is
// trusted: when the report comes, the object is read back through the same checks as a
// multipart photo (checkPhoto) and the store copies the version read under the case (a
// server-side copy on MinIO, a hard link on the local store, each refused if the object
// was replaced meanwhile), so what the case keeps is exactly what was checked, whatever is
// PUT to the URL afterwards, and its bytes are written once.

// UploadRequest asks for a presigned upload (POST /v1/uploads).
type UploadRequest struct {
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// UploadTicket is where and how to upload a photo, and the id to name it by in a report.
type UploadTicket struct {
	MediaID   string            `json:"media_id"`
	UploadURL string            `json:"upload_url"`
	Method    string            `json:"method"`
	Headers   map[string]string `json:"headers"`
	ExpiresAt time.Time         `json:"expires_at"`
}

// uploadRoutes mounts the routes of direct uploads to the object store.
func (s *Server) uploadRoutes(app *fiber.App, v1 fiber.Router) {
	v1.Post("/uploads", s.auth(models.RoleCitizen, models.RoleHandler, models.RoleSupervisor, models.RoleAdmin), s.createUpload)
	if s.cfg.Files != nil {
		app.Put("/files/*", s.putFile)
	}
}

// createUpload reserves a direct upload and returns its presigned URL (POST /v1/uploads).
func (s *Server) createUpload(c *fiber.Ctx) error {
	ctx := c.UserContext()
	var req UploadRequest
	if err := readJSON(c, &req, 4<<10); err != nil {
		return err
	}
	ctype, err := uploadType(req.ContentType)
	if err != nil {
		return err
	}
	if req.Size <= 0 {
		return models.Problemf(models.ErrInvalid, "invalid-size", "size is the photo's length in bytes, and must be positive")
	}
	if req.Size > s.cfg.MaxPhotoBytes {
		return models.Problemf(models.ErrTooLarge, "photo-too-large", "a photo is over %d MiB; send a smaller one", s.cfg.MaxPhotoBytes>>20)
	}
	now := s.now()
	u := &models.Upload{ID: models.NewID(), OwnerID: caller(c).UserID, ContentType: ctype, Size: req.Size,
		ExpiresAt: now.Add(models.UploadTTL), CreatedAt: now}
	u.ObjectKey = models.UploadPrefix + u.ID + acceptedPhotoTypes[ctype]
	link, headers, err := s.store.SignedPutURL(ctx, u.ObjectKey, ctype, models.UploadTTL)
	if err != nil {
		return fmt.Errorf("sign upload: %w", err)
	}
	if err := s.db.CreateUpload(ctx, u); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(UploadTicket{MediaID: u.ID, UploadURL: link, Method: fiber.MethodPut,
		Headers: headers, ExpiresAt: u.ExpiresAt.UTC().Truncate(time.Second)})
}

// uploadType checks a declared content type: one of the photo types intake takes.
func uploadType(declared string) (string, error) {
	mt, _, err := mime.ParseMediaType(declared)
	if err == nil {
		if _, ok := acceptedPhotoTypes[mt]; ok {
			return mt, nil
		}
	}
	what := strconv.Quote(declared)
	switch mt {
	case "image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence", "image/avif":
		what = "HEIC/HEIF"
	}
	return "", models.Problemf(models.ErrUnsupportedMedia, "unsupported-photo-type",
		"content_type is %s; send JPEG (image/jpeg) or PNG (image/png): on an iPhone, set Camera > Formats to Most Compatible or convert before upload", what)
}

// putFile receives a direct upload to the local object store (PUT /files/{key}), which has
// no server of its own: the signed URL is the authorisation, and it fixes the key, the
// expiry and the content type. The body is streamed to the store, bounded by the photo
// limit; a refused or broken upload leaves nothing behind (Put writes a temp file first).
func (s *Server) putFile(c *fiber.Ctx) error {
	key := c.Params("*")
	q := url.Values{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) { q.Add(string(k), string(v)) })
	switch err := s.cfg.Files.Verify(fiber.MethodPut, key, q, s.now()); {
	case errors.Is(err, storage.ErrExpired):
		return models.Problemf(models.ErrForbidden, "upload-url-expired",
			"this upload URL has expired; ask for a new one with POST /v1/uploads")
	case err != nil:
		return models.Problemf(models.ErrForbidden, "bad-signature",
			"this upload URL is not valid (altered, or not issued here); ask for one with POST /v1/uploads")
	}
	ctype := q.Get(storage.ContentTypeParam)
	// As S3 does for a signed header: the upload must say exactly the type it was signed
	// for, so a slot for a JPEG never holds, say, HTML.
	if got := c.Get(fiber.HeaderContentType); got != ctype {
		return models.Problemf(models.ErrForbidden, "content-type-mismatch",
			"this upload URL was signed for Content-Type %q, and the request says %q; send the headers POST /v1/uploads returned", ctype, got)
	}
	tooLarge := models.Problemf(models.ErrTooLarge, "photo-too-large", "a photo is over %d MiB; send a smaller one", s.cfg.MaxPhotoBytes>>20)
	if int64(c.Request().Header.ContentLength()) > s.cfg.MaxPhotoBytes {
		return tooLarge
	}
	body := c.Context().RequestBodyStream()
	if body == nil {
		body = strings.NewReader(string(c.Body()))
	}
	obj, err := s.cfg.Files.Put(c.UserContext(), key, &limitedReader{r: body, n: s.cfg.MaxPhotoBytes}, -1, ctype)
	switch {
	case errors.Is(err, errPhotoTooLarge):
		return tooLarge
	case errors.Is(err, storage.ErrUnavailable):
		return err
	case err != nil:
		return fmt.Errorf("store upload: %w", err)
	}
	c.Set(fiber.HeaderETag, strconv.Quote(obj.ETag))
	c.Status(fiber.StatusOK)
	return nil
}

// receiveUploads takes the direct uploads a JSON report names as its photos: each must be a
// pending upload of the reporter, uploaded, and pass the checks of a multipart photo, which
// also makes the case its own copy (checkPhoto). On a replay (store false) only the ids are
// kept, for the fingerprint: an id stands for one upload's bytes, which the first report
// copied. On error, the copies made so far are in in.photos and the uploads stay as they
// were, usable in a corrected report.
func (s *Server) receiveUploads(ctx context.Context, in *intake, ids []string, caseID, owner string, store bool) error {
	if len(ids) > s.cfg.MaxPhotos {
		return models.Problemf(models.ErrInvalid, "too-many-photos", "a report takes at most %d photos; media_ids has %d", s.cfg.MaxPhotos, len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return models.Problemf(models.ErrInvalid, "duplicate-media", "media_ids names %q twice", id)
		}
		seen[id] = true
	}
	in.mediaIDs = ids
	if !store {
		return nil
	}
	now := s.now()
	for _, id := range ids {
		u, err := s.pendingUpload(ctx, id, owner, now)
		if err != nil {
			return err
		}
		rc, obj, err := s.store.Get(ctx, u.ObjectKey)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				// A report that took it a moment ago removes the object after its commit.
				if _, err := s.pendingUpload(ctx, id, owner, now); err != nil {
					return err
				}
			}
			return s.missingUpload(u, err, now)
		}
		// The store's size of this very version: a wrong one is refused before any copying.
		if err := s.uploadedSize(u, obj.Size); err != nil {
			rc.Close()
			return err
		}
		m, _, gps, err := s.checkPhoto(ctx, rc, photoDest{caseID: caseID, owner: owner, kind: models.MediaBefore,
			id: u.ID, want: u.ContentType, store: true, from: &obj, noGPS: !in.wantsPhotoPosition()})
		rc.Close()
		if m != nil {
			in.photos = append(in.photos, *m)
		}
		if err != nil {
			return err
		}
		if err := s.uploadedSize(u, m.Size); err != nil {
			return err
		}
		in.uploadKeys = append(in.uploadKeys, u.ObjectKey)
		if in.gps == nil {
			in.gps = gps
		}
	}
	return nil
}

// pendingUpload finds the caller's pending upload by id, or says why it cannot be used.
func (s *Server) pendingUpload(ctx context.Context, id, owner string, now time.Time) (*models.Upload, error) {
	u, err := s.db.UploadByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		// Attached already? Only the owner learns so; anyone else's id is simply unknown.
		if m, merr := s.db.MediaByID(ctx, id); merr == nil && m.OwnerID == owner {
			return nil, models.Problemf(models.ErrConflict, "media-already-attached",
				"the photo %s is already attached to a report; upload it again for a new one", id)
		}
	}
	if errors.Is(err, models.ErrNotFound) || (err == nil && u.OwnerID != owner) {
		return nil, models.Problemf(models.ErrInvalid, "unknown-media",
			"media_ids: %q is not an upload of yours; get one with POST /v1/uploads, or send photos as multipart parts named photo", id)
	}
	if err != nil {
		return nil, err
	}
	if now.After(u.ExpiresAt.Add(models.UploadKeep)) {
		return nil, models.Problemf(models.ErrInvalid, "upload-expired",
			"the photo %s was uploaded too long ago to be attached; upload it again", id)
	}
	return u, nil
}

// uploadedSize checks an upload's actual size against the limit and its declared size.
func (s *Server) uploadedSize(u *models.Upload, size int64) error {
	if size > s.cfg.MaxPhotoBytes {
		return models.Problemf(models.ErrTooLarge, "photo-too-large", "the photo %s is over %d MiB; send a smaller one", u.ID, s.cfg.MaxPhotoBytes>>20)
	}
	if size != u.Size {
		return models.Problemf(models.ErrInvalid, "media-size-mismatch",
			"the photo %s has %d bytes but was declared with %d; ask for a new upload URL with the right size", u.ID, size, u.Size)
	}
	return nil
}

// missingUpload explains a reserved upload whose object cannot be read.
func (s *Server) missingUpload(u *models.Upload, err error, now time.Time) error {
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if now.After(u.ExpiresAt) {
		return models.Problemf(models.ErrInvalid, "upload-expired",
			"the photo %s was never uploaded and its upload URL has expired; ask for a new one with POST /v1/uploads", u.ID)
	}
	return models.Problemf(models.ErrInvalid, "upload-incomplete",
		"the photo %s has not been uploaded yet; PUT it to its upload_url first, then send the report", u.ID)
}

// removeUploaded removes the uploaded objects a case has taken copies of, after the answer:
// the report is complete without it, and on MinIO it is a round trip per photo. It is best
// effort: what stays (a failure, a process stopped first) is an object under the uploads
// prefix without a row, which the sweeper removes.
func (s *Server) removeUploaded(ctx context.Context, keys []string) {
	if len(keys) == 0 {
		return
	}
	bg := context.WithoutCancel(ctx)
	s.cfg.Background(func() {
		for _, k := range keys {
			if err := s.store.Delete(bg, k); err != nil {
				s.log.Warn("could not remove an attached upload", "key", k, "err", err)
			}
		}
	})
}
