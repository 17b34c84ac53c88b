package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"image"
	_ "image/jpeg" // decoders for DecodeConfig
	_ "image/png"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/rwcarlsen/goexif/exif"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

const (
	maxDescription = 4000
	maxFieldBytes  = 64 << 10
	// sniffBytes is how much of a photo is looked at before it is stored: enough for the
	// type and for a JPEG's dimensions, which may follow a large EXIF block.
	sniffBytes = 256 << 10
)

// acceptedPhotoTypes are the image types City Eyes takes, by their bytes.
var acceptedPhotoTypes = map[string]string{"image/jpeg": ".jpg", "image/png": ".png"}

// intake is a report as read from the request, before it is checked.
type intake struct {
	fields map[string]string
	attrs  map[string]any
	photos []models.Media
	// hashes of the photos in order, for the request's fingerprint
	photoHashes []string
	// gps is the position in the first photo's EXIF GPS tags, if any: used when the report
	// comes without lat and lon.
	gps *[2]float64
	// mediaIDs are the direct uploads a JSON report names, in order, and uploadKeys their
	// objects, removed once the report has taken copies of them.
	mediaIDs   []string
	uploadKeys []string
}

// wantsPhotoPosition says whether a photo's EXIF position is worth reading: the report has
// no position of its own so far, and no earlier photo gave one.
func (in *intake) wantsPhotoPosition() bool {
	return in.gps == nil && (strings.TrimSpace(in.fields["lat"]) == "" || strings.TrimSpace(in.fields["lon"]) == "")
}

// createReport accepts a citizen's report (POST /v1/reports): multipart with the photos
// streamed straight to the object store, or JSON. Nothing is half-written: the case, its
// event, its photos' rows and its outbox row commit together, and photos stored before a
// failure are removed.
func (s *Server) createReport(c *fiber.Ctx) error {
	ctx := c.UserContext()
	p := caller(c)
	key := strings.TrimSpace(c.Get("Idempotency-Key"))
	if key == "" || len(key) > 200 {
		return models.Problemf(models.ErrMalformed, "idempotency-key-required",
			"send an Idempotency-Key header (a new UUID per report, the same one when retrying it)")
	}
	// A key seen before: read the request without storing its photos, then answer as the
	// first time, or refuse a different request under the same key.
	prior, err := s.db.FindIdempotencyKey(ctx, p.UserID, key)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	replay := err == nil

	caseID := models.NewID()
	in, err := s.readReport(c, caseID, p.UserID, !replay)
	cleanup := func() { s.removePhotos(ctx, in.photos) }
	if err != nil {
		cleanup()
		return err
	}
	fp := in.fingerprint()
	if replay {
		if prior.Fingerprint != fp {
			return models.IdempotencyMismatch()
		}
		return s.replyCase(c, prior.CaseID)
	}
	nc, cat, err := s.checkReport(c, in, caseID, p.UserID)
	if err != nil {
		cleanup()
		return err
	}
	nc.IdempotencyKey, nc.Fingerprint = key, fp
	nc.Uploads = in.mediaIDs
	created, err := s.db.CreateCase(ctx, *nc, s.now())
	var again *models.ErrReplay
	if errors.As(err, &again) {
		cleanup()
		return s.replyCase(c, again.CaseID)
	}
	if err != nil {
		cleanup()
		return err
	}
	s.removeUploaded(ctx, in.uploadKeys)
	// The answer is built from what was just written; only the timeline is read back.
	r, err := s.newReport(ctx, created, in.photos)
	if err != nil {
		return err
	}
	if r.LikelyDuplicates, err = s.duplicatesOf(ctx, cat, created.Lat, created.Lon, created.ID); err != nil {
		return err
	}
	c.Location("/v1/reports/" + created.ID)
	return c.Status(fiber.StatusCreated).JSON(r)
}

// duplicates lists the likely duplicates of a report at a point, leaving out the report
// itself.
func (s *Server) duplicates(ctx context.Context, categoryID string, lat, lon float64, self string) ([]DuplicateRef, error) {
	cat, err := s.db.Category(ctx, categoryID)
	if err != nil {
		return nil, err
	}
	return s.duplicatesOf(ctx, cat, lat, lon, self)
}

// duplicatesOf is duplicates with the category in hand.
func (s *Server) duplicatesOf(ctx context.Context, cat *models.Category, lat, lon float64, self string) ([]DuplicateRef, error) {
	cs, err := s.db.LikelyDuplicates(ctx, cat, lat, lon, s.now())
	if err != nil {
		return nil, err
	}
	var out []DuplicateRef
	for _, c := range cs {
		if c.ID != self {
			out = append(out, DuplicateRef{ID: c.ID, Number: c.Number, Status: string(c.Status),
				DistanceM: models.DistanceMetres(lat, lon, c.Lat, c.Lon)})
		}
	}
	return out, nil
}

// checkDuplicates answers "has this been reported already?" before a citizen reports
// (GET /v1/reports/check?category=&lat=&lon=).
func (s *Server) checkDuplicates(c *fiber.Ctx) error {
	ctx := c.UserContext()
	lat, lon, loc, err := s.placeOf(c)
	if err != nil {
		return err
	}
	cat, err := s.db.CategoryByCode(ctx, loc.JurisdictionID, c.Query("category"))
	if err != nil {
		return models.Problemf(models.ErrInvalid, "unknown-category", "category %q is not offered at this place", c.Query("category"))
	}
	dups, err := s.duplicates(ctx, cat.ID, lat, lon, "")
	if err != nil {
		return err
	}
	if dups == nil {
		dups = []DuplicateRef{}
	}
	return c.JSON(DuplicateCheck{Duplicates: dups})
}

// replyCase answers a retried submission with the case the first one created.
func (s *Server) replyCase(c *fiber.Ctx, id string) error {
	cs, err := s.db.Case(c.UserContext(), id)
	if err != nil {
		return err
	}
	r, err := s.toReport(c.UserContext(), cs, true, false)
	if err != nil {
		return err
	}
	c.Set("Idempotent-Replayed", "true")
	c.Location("/v1/reports/" + id)
	return c.Status(fiber.StatusCreated).JSON(r)
}

// readReport reads the body, multipart or JSON. With store false (a replay) photos are
// read and hashed but not stored. On error, the photos already stored are in the result.
func (s *Server) readReport(c *fiber.Ctx, caseID, owner string, store bool) (*intake, error) {
	in := &intake{fields: map[string]string{}, attrs: map[string]any{}}
	mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	switch {
	case err == nil && mt == fiber.MIMEApplicationJSON:
		var j ReportJSON
		if err := readJSON(c, &j, 1<<20); err != nil {
			return in, err
		}
		in.fields["category"], in.fields["description"], in.fields["address"] = j.Category, j.Description, j.Address
		if j.Lat != nil {
			in.fields["lat"] = strconv.FormatFloat(*j.Lat, 'f', -1, 64)
		}
		if j.Lon != nil {
			in.fields["lon"] = strconv.FormatFloat(*j.Lon, 'f', -1, 64)
		}
		for k, v := range j.Attributes {
			in.attrs[k] = v
		}
		return in, s.receiveUploads(c.UserContext(), in, j.MediaIDs, caseID, owner, store)
	case err == nil && mt == "multipart/form-data" && params["boundary"] != "":
	default:
		return in, models.Problemf(models.ErrUnsupportedMedia, "unsupported-body",
			"send the report as multipart/form-data (with photo parts) or as application/json")
	}
	body := c.Context().RequestBodyStream()
	if body == nil {
		body = bytes.NewReader(c.Body())
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return in, models.Problemf(models.ErrMalformed, "malformed-multipart", "the multipart body cannot be read: %v", err)
		}
		name := part.FormName()
		switch {
		case name == "photo":
			if len(in.photoHashes) >= s.cfg.MaxPhotos {
				return in, models.Problemf(models.ErrInvalid, "too-many-photos", "a report takes at most %d photos", s.cfg.MaxPhotos)
			}
			// Fields usually come before the photos, so the report's own position is known.
			m, hash, gps, err := s.checkPhoto(c.UserContext(), part, photoDest{caseID: caseID, owner: owner,
				kind: models.MediaBefore, store: store, noGPS: !in.wantsPhotoPosition()})
			if m != nil {
				in.photos = append(in.photos, *m)
			}
			if err != nil {
				return in, err
			}
			in.photoHashes = append(in.photoHashes, hash)
			if in.gps == nil {
				in.gps = gps
			}
		case name != "":
			v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			if err != nil {
				return in, models.Problemf(models.ErrMalformed, "malformed-multipart", "field %q cannot be read: %v", name, err)
			}
			if len(v) > maxFieldBytes {
				return in, models.Problemf(models.ErrTooLarge, "field-too-large", "field %q is over %d bytes", name, maxFieldBytes)
			}
			if code, ok := strings.CutPrefix(name, "attr."); ok {
				if prev, seen := in.attrs[code]; seen {
					// A repeated multi-value answer: collect the values.
					switch p := prev.(type) {
					case []string:
						in.attrs[code] = append(p, string(v))
					case string:
						in.attrs[code] = []string{p, string(v)}
					}
				} else {
					in.attrs[code] = string(v)
				}
			} else {
				in.fields[name] = string(v)
			}
		}
		part.Close()
	}
	return in, nil
}

// limitedReader fails once more than n bytes have been read, so an oversized photo stops
// the upload to the store instead of being stored and measured afterwards.
type limitedReader struct {
	r io.Reader
	n int64
}

var errPhotoTooLarge = errors.New("photo too large")

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errPhotoTooLarge
	}
	return n, err
}

// receivePhoto checks a photo part by its bytes and streams it to the object store, hashing
// it on the way, for a caller that has no use for its EXIF position. The returned media is
// set whenever an object was stored, even on error, so the caller can remove it.
func (s *Server) receivePhoto(ctx context.Context, part io.Reader, caseID, owner, kind string, store bool) (*models.Media, string, *[2]float64, error) {
	return s.checkPhoto(ctx, part, photoDest{caseID: caseID, owner: owner, kind: kind, store: store, noGPS: true})
}

// photoDest says where checkPhoto puts a photo and what it expects of it.
type photoDest struct {
	caseID, owner, kind string
	// id is the media id; empty for a new one.
	id string
	// want is the type the photo was declared as (a direct upload); empty for any accepted
	// type.
	want string
	// store false reads and hashes the photo without storing it (a replayed request).
	store bool
	// from is the stored object the photo is read from (a direct upload): the store copies
	// that very version under the case, rather than the bytes being written again.
	from *storage.Object
	// noGPS skips reading the EXIF position, for a report that has its own (and returns
	// none).
	noGPS bool
}

// checkPhoto checks a photo by its bytes (type, dimensions, pixel count, size) and streams
// it to the object store under the case, hashing it on the way: the one path every photo
// takes, whether it came as a multipart part or was uploaded directly beforehand. The
// returned media is set whenever an object was stored, even on error, so the caller can
// remove it.
func (s *Server) checkPhoto(ctx context.Context, r io.Reader, dst photoDest) (*models.Media, string, *[2]float64, error) {
	br, _ := s.sniffers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(r, sniffBytes)
	} else {
		br.Reset(r)
	}
	// Nothing read through br outlives this call: the head is parsed here and the rest
	// streamed to the store before it returns.
	defer func() { br.Reset(nil); s.sniffers.Put(br) }()
	head, _ := br.Peek(sniffBytes)
	if len(head) == 0 {
		return nil, "", nil, models.Problemf(models.ErrInvalid, "empty-photo", "a photo part is empty")
	}
	ctype := http.DetectContentType(head)
	ext, ok := acceptedPhotoTypes[ctype]
	if !ok {
		what := ctype
		if isHEIF(head) {
			what = "HEIC/HEIF"
		}
		return nil, "", nil, models.Problemf(models.ErrUnsupportedMedia, "unsupported-photo-type",
			"a photo is %s; send JPEG (image/jpeg) or PNG (image/png): on an iPhone, set Camera > Formats to Most Compatible or convert before upload", what)
	}
	if dst.want != "" && ctype != dst.want {
		return nil, "", nil, models.Problemf(models.ErrInvalid, "media-type-mismatch",
			"a photo was declared as %s but its bytes are %s; ask for a new upload URL with the right content_type", dst.want, ctype)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(head))
	if err != nil {
		return nil, "", nil, models.Problemf(models.ErrInvalid, "corrupt-photo", "a photo looks like %s but cannot be read: it may be damaged or cut short", ctype)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > s.cfg.MaxPixels {
		return nil, "", nil, models.Problemf(models.ErrInvalid, "photo-too-many-pixels",
			"a photo is %d×%d pixels; the limit is %d megapixels", cfg.Width, cfg.Height, s.cfg.MaxPixels/1_000_000)
	}
	var gps *[2]float64
	if !dst.noGPS {
		gps = exifGPS(head)
	}
	h := sha256.New()
	lr := &limitedReader{r: io.TeeReader(br, h), n: s.cfg.MaxPhotoBytes}
	tooLarge := models.Problemf(models.ErrTooLarge, "photo-too-large", "a photo is over %d MiB; send a smaller one", s.cfg.MaxPhotoBytes>>20)
	if !dst.store {
		if _, err := io.Copy(io.Discard, lr); err != nil {
			if errors.Is(err, errPhotoTooLarge) {
				return nil, "", nil, tooLarge
			}
			return nil, "", nil, models.Problemf(models.ErrMalformed, "malformed-multipart", "a photo cannot be read: %v", err)
		}
		return nil, hex.EncodeToString(h.Sum(nil)), gps, nil
	}
	id := dst.id
	if id == "" {
		id = models.NewID()
	}
	key := fmt.Sprintf("cases/%s/%s%s", dst.caseID, id, ext)
	if dst.from != nil {
		return s.copyPhoto(ctx, lr, *dst.from, key, &models.Media{ID: id, OwnerID: dst.owner, Kind: dst.kind, ObjectKey: key,
			ContentType: ctype, Width: cfg.Width, Height: cfg.Height}, h, gps, tooLarge)
	}
	obj, err := s.store.Put(ctx, key, lr, -1, ctype)
	m := &models.Media{ID: id, OwnerID: dst.owner, Kind: dst.kind, ObjectKey: key, ContentType: ctype,
		Width: cfg.Width, Height: cfg.Height, SHA256: hex.EncodeToString(h.Sum(nil)), Size: obj.Size}
	switch {
	case errors.Is(err, errPhotoTooLarge):
		return m, "", nil, tooLarge
	case errors.Is(err, storage.ErrUnavailable):
		return m, "", nil, err
	case err != nil:
		var mp *models.Problem
		if errors.As(err, &mp) {
			return m, "", nil, err
		}
		return m, "", nil, fmt.Errorf("store photo: %w", err)
	}
	return m, m.SHA256, gps, nil
}

// copyPhoto finishes checkPhoto for a photo already in the store: the rest of its bytes are
// read for their size and SHA-256, and the store copies the version they were read from to
// key, or refuses if the object has been replaced since (a second PUT to its upload URL).
// So the case keeps exactly the bytes checked, without their passing through the API twice.
func (s *Server) copyPhoto(ctx context.Context, rest io.Reader, from storage.Object, key string, m *models.Media,
	h hash.Hash, gps *[2]float64, tooLarge error) (*models.Media, string, *[2]float64, error) {
	n, err := io.Copy(io.Discard, rest)
	switch {
	case errors.Is(err, errPhotoTooLarge):
		return nil, "", nil, tooLarge
	case err != nil:
		return nil, "", nil, fmt.Errorf("read photo %s: %w", from.Key, err)
	}
	obj, err := s.store.Copy(ctx, from, key)
	switch {
	case errors.Is(err, storage.ErrChanged) || errors.Is(err, storage.ErrNotFound):
		return nil, "", nil, models.Problemf(models.ErrConflict, "upload-changed",
			"the photo %s was uploaded again or removed while this report was read; send the report again", m.ID)
	case err != nil:
		// The copy may be in place all the same (a failure after it was made): the caller
		// removes it with the media.
		if errors.Is(err, storage.ErrUnavailable) {
			return m, "", nil, err
		}
		return m, "", nil, fmt.Errorf("copy photo: %w", err)
	}
	m.Size, m.SHA256 = obj.Size, hex.EncodeToString(h.Sum(nil))
	if obj.Size != n {
		return m, "", nil, fmt.Errorf("copy photo %s: %d bytes read, %d copied", from.Key, n, obj.Size)
	}
	return m, m.SHA256, gps, nil
}

// exifGPS reads the position from a photo's EXIF GPS tags, when the first bytes hold them.
func exifGPS(head []byte) *[2]float64 {
	x, err := exif.Decode(bytes.NewReader(head))
	if err != nil {
		return nil
	}
	lat, lon, err := x.LatLong()
	if err != nil || math.IsNaN(lat) || math.IsNaN(lon) || (lat == 0 && lon == 0) || math.Abs(lat) > 90 || math.Abs(lon) > 180 {
		return nil
	}
	return &[2]float64{lat, lon}
}

// isHEIF recognises an ISO-BMFF image (HEIC, HEIF, AVIF) by its ftyp box.
func isHEIF(b []byte) bool {
	if len(b) < 12 || string(b[4:8]) != "ftyp" {
		return false
	}
	switch string(b[8:12]) {
	case "heic", "heix", "hevc", "hevx", "mif1", "msf1", "avif":
		return true
	}
	return false
}

// fingerprint digests what a report says (fields, answers and photo contents), not how it
// was encoded, so a retry with a new multipart boundary still matches.
func (in *intake) fingerprint() string {
	h := sha256.New()
	keys := make([]string, 0, len(in.fields))
	for k := range in.fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "f\x00%s\x00%s\x00", k, in.fields[k])
	}
	akeys := make([]string, 0, len(in.attrs))
	for k := range in.attrs {
		akeys = append(akeys, k)
	}
	sort.Strings(akeys)
	for _, k := range akeys {
		fmt.Fprintf(h, "a\x00%s\x00%v\x00", k, in.attrs[k])
	}
	for _, p := range in.photoHashes {
		fmt.Fprintf(h, "p\x00%s\x00", p)
	}
	for _, id := range in.mediaIDs {
		fmt.Fprintf(h, "m\x00%s\x00", id)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkReport validates what was read and places it: city, area, category, answers. It
// returns the new case and its category.
func (s *Server) checkReport(c *fiber.Ctx, in *intake, caseID, reporter string) (*models.NewCase, *models.Category, error) {
	source := "device"
	if strings.TrimSpace(in.fields["lat"]) == "" && strings.TrimSpace(in.fields["lon"]) == "" && in.gps != nil {
		// No position from the phone, but the photo knows where it was taken.
		in.fields["lat"] = strconv.FormatFloat(in.gps[0], 'f', -1, 64)
		in.fields["lon"] = strconv.FormatFloat(in.gps[1], 'f', -1, 64)
		source = "photo_exif"
	}
	lat, err := coordinate(in.fields["lat"], "lat", 90)
	if err != nil {
		return nil, nil, err
	}
	lon, err := coordinate(in.fields["lon"], "lon", 180)
	if err != nil {
		return nil, nil, err
	}
	loc, ok := s.cfg.Areas().Locate(lat, lon)
	if !ok {
		return nil, nil, models.Problemf(models.ErrInvalid, "outside-service-area",
			"the point %.6f, %.6f is not in any city served here; check the phone's location", lat, lon)
	}
	code := strings.TrimSpace(in.fields["category"])
	if code == "" {
		return nil, nil, models.Problemf(models.ErrInvalid, "category-required", "category is required: a code from GET /v1/categories?lat=&lon=")
	}
	var cat *models.Category
	err = models.ErrNotFound // a code that is not text names no category
	if storableText(code) {
		cat, err = s.db.CategoryByCode(c.UserContext(), loc.JurisdictionID, code)
	}
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, models.Problemf(models.ErrInvalid, "unknown-category",
			"category %q is not offered at this place; GET /v1/categories?lat=%.6f&lon=%.6f lists those that are", code, lat, lon)
	}
	if err != nil {
		return nil, nil, err
	}
	desc := strings.TrimSpace(in.fields["description"])
	if !storableText(desc) {
		return nil, nil, models.Problemf(models.ErrInvalid, "invalid-description", "description is not valid UTF-8 text, or has a NUL character")
	}
	if n := utf8.RuneCountInString(desc); n > maxDescription {
		return nil, nil, models.Problemf(models.ErrInvalid, "description-too-long", "description has %d characters; the limit is %d", n, maxDescription)
	}
	if desc == "" && len(in.photos) == 0 {
		return nil, nil, models.Problemf(models.ErrInvalid, "empty-report", "a report needs a description or at least one photo")
	}
	addr := strings.TrimSpace(in.fields["address"])
	if len(addr) > 500 {
		return nil, nil, models.Problemf(models.ErrInvalid, "address-too-long", "address is over 500 characters")
	}
	if !storableText(addr) {
		return nil, nil, models.Problemf(models.ErrInvalid, "invalid-address", "address is not valid UTF-8 text, or has a NUL character")
	}
	answers, err := models.ValidateAnswers(cat, in.attrs)
	if err != nil {
		return nil, nil, err
	}
	return &models.NewCase{
		ID: caseID, ReporterID: reporter, JurisdictionID: loc.JurisdictionID, CategoryID: cat.ID, AreaID: loc.AreaID,
		Description: desc, Address: addr, Lat: lat, Lon: lon, LocationSource: source, Attributes: answers, Media: in.photos,
	}, cat, nil
}

// pointOf reads the lat and lon query parameters.
func pointOf(c *fiber.Ctx) (float64, float64, error) {
	lat, err := coordinate(c.Query("lat"), "lat", 90)
	if err != nil {
		return 0, 0, err
	}
	lon, err := coordinate(c.Query("lon"), "lon", 180)
	return lat, lon, err
}

// placeOf reads the lat and lon query parameters and finds the city and area there; a
// point in no city served is a 422.
func (s *Server) placeOf(c *fiber.Ctx) (float64, float64, models.Location, error) {
	lat, lon, err := pointOf(c)
	if err != nil {
		return 0, 0, models.Location{}, err
	}
	loc, ok := s.cfg.Areas().Locate(lat, lon)
	if !ok {
		return 0, 0, loc, models.Problemf(models.ErrInvalid, "outside-service-area",
			"the point %.6f, %.6f is not in any city served here", lat, lon)
	}
	return lat, lon, loc, nil
}

// storableText reports whether s is text every database stores as it is: valid UTF-8
// without NUL characters (PostgreSQL refuses both in text and NUL in JSON).
func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// coordinate parses a latitude or longitude and checks its range.
func coordinate(s, name string, limit float64) (float64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, models.Problemf(models.ErrInvalid, "invalid-location", "%s is required (decimal degrees, WGS 84)", name)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, models.Problemf(models.ErrInvalid, "invalid-location", "%s %q is not a number of decimal degrees", name, s)
	}
	if v < -limit || v > limit {
		return 0, models.Problemf(models.ErrInvalid, "invalid-location", "%s %v is out of range: it must be between -%v and %v", name, v, limit, limit)
	}
	return v, nil
}

// getReport shows a report (GET /v1/reports/{id}, /v1/cases/{id}): in full to its reporter
// and to staff who may see its case, and as the public view to everyone else.
func (s *Server) getReport(c *fiber.Ctx) error {
	ctx := c.UserContext()
	p := caller(c)
	cs, err := s.db.Case(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	staff := p.Role != models.RoleCitizen
	if staff && cs.JurisdictionID != p.JurisdictionID {
		return fmt.Errorf("%w: case %s", models.ErrNotFound, cs.ID) // another city's: not theirs to know of
	}
	if staff && !mayView(p, cs) {
		return models.Problemf(models.ErrForbidden, "other-department", "case %s is not in your department's or city's queue", cs.Number)
	}
	full := staff || cs.ReporterID == p.UserID
	r, err := s.toReport(ctx, cs, full, staff)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// mayView reports whether a member of staff may see a case: handlers their department's,
// supervisors and administrators their city's.
func mayView(p *principal, cs *models.Case) bool {
	switch p.Role {
	case models.RoleHandler:
		return cs.DepartmentID != nil && *cs.DepartmentID == p.DepartmentID
	case models.RoleSupervisor, models.RoleAdmin:
		return cs.JurisdictionID == p.JurisdictionID
	}
	return false
}

// myReports lists the caller's own reports, newest first (GET /v1/me/reports).
func (s *Server) myReports(c *fiber.Ctx) error {
	ctx := c.UserContext()
	cs, next, err := s.db.ReporterCases(ctx, caller(c).UserID, c.Query("cursor"), c.QueryInt("limit", 20))
	if err != nil {
		return err
	}
	items, err := s.toReports(ctx, cs, true, false, false)
	if err != nil {
		return err
	}
	page := Page[Report]{Items: items, NextCursor: next}
	return c.JSON(page)
}
