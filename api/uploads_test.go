package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// ticket asks for a direct upload and fails the test unless one is given.
func (h *harness) ticket(token, ctype string, size int) UploadTicket {
	h.t.Helper()
	resp, body := h.json("POST", "/v1/uploads", token, UploadRequest{ContentType: ctype, Size: int64(size)})
	if resp.StatusCode != 201 {
		h.t.Fatalf("POST /v1/uploads: %d %s", resp.StatusCode, body)
	}
	var tk UploadTicket
	if err := json.Unmarshal(body, &tk); err != nil {
		h.t.Fatal(err)
	}
	if tk.Method != "PUT" || tk.Headers["Content-Type"] != ctype || !tk.ExpiresAt.After(h.now) {
		h.t.Fatalf("ticket %+v", tk)
	}
	return tk
}

// putUpload sends data to an upload URL as a client would: through the API's PUT /files/*
// for the local store, or with net/http straight to MinIO's presigned URL. It returns the
// status and body.
func (h *harness) putUpload(rawURL string, headers map[string]string, data []byte) (int, []byte) {
	h.t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		h.t.Fatal(err)
	}
	if strings.HasPrefix(u.Path, "/files/") && u.Host == "cityeyes.test" {
		hs := []string{}
		for k, v := range headers {
			if k != "Content-Type" {
				hs = append(hs, k, v)
			}
		}
		resp, body := h.do("PUT", u.RequestURI(), "", data, headers["Content-Type"], hs...)
		return resp.StatusCode, body
	}
	req, err := http.NewRequest(http.MethodPut, rawURL, bytes.NewReader(data))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// uploaded asks for an upload of data declared as ctype and uploads it.
func (h *harness) uploaded(token, ctype string, data []byte) UploadTicket {
	h.t.Helper()
	tk := h.ticket(token, ctype, len(data))
	if status, body := h.putUpload(tk.UploadURL, tk.Headers, data); status != 200 {
		h.t.Fatalf("upload: %d %s", status, body)
	}
	return tk
}

// report sends a JSON report and decodes the answer.
func (h *harness) report(token, key string, r ReportJSON) (*http.Response, Report, Problem) {
	h.t.Helper()
	resp, data := h.json("POST", "/v1/reports", token, r, "Idempotency-Key", key)
	var rep Report
	var p Problem
	if resp.StatusCode < 300 {
		_ = json.Unmarshal(data, &rep)
	} else {
		_ = json.Unmarshal(data, &p)
	}
	return resp, rep, p
}

// pothole is a valid JSON report in the west area naming the given uploads.
func pothole(ids ...string) ReportJSON {
	return ReportJSON{Category: "pothole", Lat: ptr(testenv.WestLat), Lon: ptr(testenv.WestLon),
		Attributes: map[string]any{"depth": "deep"}, MediaIDs: ids}
}

func (h *harness) count(query string) int {
	h.t.Helper()
	var n int
	if err := h.db.SQL().QueryRow(query).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// pending fails the test unless the upload is still pending with its object in place, as
// it must be after a refused report.
func (h *harness) pending(tk UploadTicket, uploaded bool) {
	h.t.Helper()
	u, err := h.db.UploadByID(context.Background(), tk.MediaID)
	if err != nil {
		h.t.Fatalf("upload %s after a refused report: %v", tk.MediaID, err)
	}
	_, err = h.store.Stat(context.Background(), u.ObjectKey)
	if uploaded && err != nil {
		h.t.Fatalf("upload object after a refused report: %v", err)
	}
}

// bombPNG is a valid PNG of one pixel whose header claims 100000×100000 pixels: a few dozen
// bytes that would decode to 40 GB.
func bombPNG(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Signature (8), IHDR length (4) and type (4), then width and height; the chunk's CRC
	// covers type and data (13 bytes).
	binary.BigEndian.PutUint32(b[16:], 100000)
	binary.BigEndian.PutUint32(b[20:], 100000)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// TestDirectUpload: a photo uploaded straight to the store (the local one through PUT
// /files/*, or MinIO's presigned URL) becomes the report's photo, checked and copied under
// the case, with its photo task queued; the upload is used up, a retry is answered with the
// same report, and the same upload cannot be attached twice.
func TestDirectUpload(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	token := h.citizen("device-upload")
	tk := h.uploaded(token, "image/jpeg", testenv.PhotoJPEG)
	png := h.uploaded(token, "image/png", func() []byte {
		var b bytes.Buffer
		_ = png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 40, 30)))
		return b.Bytes()
	}())

	resp, r, p := h.report(token, "up-1", pothole(tk.MediaID, png.MediaID))
	if resp.StatusCode != 201 || len(r.Photos) != 2 {
		t.Fatalf("report: %d %+v %+v", resp.StatusCode, r, p)
	}
	ms, err := h.db.CaseMedia(ctx, r.ID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("media: %v %+v", err, ms)
	}
	byID := map[string]models.Media{ms[0].ID: ms[0], ms[1].ID: ms[1]}
	m, ok := byID[tk.MediaID]
	if !ok || m.ContentType != "image/jpeg" || m.Width != 640 || m.Height != 480 || m.Size != int64(len(testenv.PhotoJPEG)) ||
		!strings.HasPrefix(m.ObjectKey, "cases/"+r.ID+"/") || len(m.SHA256) != 64 || m.Kind != models.MediaBefore {
		t.Fatalf("the JPEG's media row: %+v", m)
	}
	if pm := byID[png.MediaID]; pm.ContentType != "image/png" || pm.Width != 40 {
		t.Fatalf("the PNG's media row: %+v", pm)
	}
	rc, _, err := h.store.Get(ctx, m.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, testenv.PhotoJPEG) {
		t.Fatal("the case's copy differs from the uploaded photo")
	}
	if n := h.count(fmt.Sprintf("SELECT COUNT(*) FROM outbox WHERE task_type = '%s' AND CAST(payload AS TEXT) LIKE '%%%s%%'", models.TaskPhoto, tk.MediaID)); n != 1 {
		t.Fatalf("photo tasks for the upload: %d, want 1", n)
	}
	if objs := testenv.Objects(t, h.store, models.UploadPrefix); len(objs) != 0 {
		t.Fatalf("uploads left after the report took them: %v", objs)
	}
	if n := h.count("SELECT COUNT(*) FROM uploads"); n != 0 {
		t.Fatalf("%d upload rows left after the report took them", n)
	}

	// A retry under the same key is the same report, and stores nothing more.
	resp, again, _ := h.report(token, "up-1", pothole(tk.MediaID, png.MediaID))
	if resp.StatusCode != 201 || again.ID != r.ID || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %+v", resp.StatusCode, again)
	}
	if objs := testenv.Objects(t, h.store, "cases/"); len(objs) != 2 {
		t.Fatalf("objects after a retry: %v", objs)
	}
	// Other photos under the same key are another report: refused.
	resp, _, p = h.report(token, "up-1", pothole(png.MediaID, tk.MediaID))
	if resp.StatusCode != 409 || p.Type != "urn:cityeyes:problem:idempotency-key-reused" {
		t.Fatalf("same key, photos in another order: %d %+v", resp.StatusCode, p)
	}
	// The uploads are used up: a new report cannot take them again.
	resp, _, p = h.report(token, "up-2", pothole(tk.MediaID))
	if resp.StatusCode != 409 || p.Type != "urn:cityeyes:problem:media-already-attached" {
		t.Fatalf("an attached upload again: %d %+v", resp.StatusCode, p)
	}
	if n := h.count("SELECT COUNT(*) FROM cases"); n != 1 {
		t.Fatalf("%d cases, want 1", n)
	}
}

// TestDirectUploadPositionFromThePhoto: without lat and lon, the uploaded photo's EXIF GPS
// position places the report, as for a multipart photo.
func TestDirectUploadPositionFromThePhoto(t *testing.T) {
	h := newHarness(t)
	testenv.Apply(t, h.db, testenv.OtherCityYAML)
	idx, err := h.db.LoadAreaIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.cfgAreas(idx)
	token := h.citizen("device-upload-gps")
	tk := h.uploaded(token, "image/jpeg", testenv.PhotoJPEG)
	resp, r, p := h.report(token, "gps", ReportJSON{Category: "pothole", MediaIDs: []string{tk.MediaID}})
	if resp.StatusCode != 201 || r.LocationSource != "photo_exif" || r.Area == nil || *r.Area != "centre" || r.Lat < 43.467 || r.Lat > 43.468 {
		t.Fatalf("%d %+v %+v", resp.StatusCode, r, p)
	}
}

// TestDirectUploadRefusals: each bad reference or bad upload is refused with its problem,
// leaves no case and no copy, and leaves the report's uploads pending for a corrected retry.
func TestDirectUploadRefusals(t *testing.T) {
	corrupt := append(append([]byte{}, testenv.PhotoJPEG[:20]...), bytes.Repeat([]byte{0}, 4000)...)
	tests := []struct {
		name   string
		status int
		typ    string
		// setup makes the uploads (all pending afterwards) and the report's ids.
		setup func(h *harness, token string) (ids []string, pending []UploadTicket, uploaded bool)
	}{
		{"unknown id", 422, "unknown-media", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			return []string{models.NewID()}, nil, false
		}},
		{"not an id", 422, "unknown-media", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			return []string{"x"}, nil, false
		}},
		{"another user's upload", 422, "unknown-media", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			tk := h.uploaded(h.citizen("device-someone-else"), "image/jpeg", testenv.PhotoJPEG)
			return []string{tk.MediaID}, []UploadTicket{tk}, true
		}},
		{"bytes of another type than declared", 422, "media-type-mismatch", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			tk := h.uploaded(token, "image/png", testenv.PhotoJPEG)
			return []string{tk.MediaID}, []UploadTicket{tk}, true
		}},
		{"bytes not an image", 415, "unsupported-photo-type", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			tk := h.uploaded(token, "image/jpeg", []byte("<html><script>alert(1)</script></html>"))
			return []string{tk.MediaID}, []UploadTicket{tk}, true
		}},
		{"decompression bomb", 422, "photo-too-many-pixels", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			tk := h.uploaded(token, "image/png", bombPNG(h.t))
			return []string{tk.MediaID}, []UploadTicket{tk}, true
		}},
		{"corrupted JPEG", 422, "corrupt-photo", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			good := h.uploaded(token, "image/jpeg", testenv.PhotoJPEG)
			bad := h.uploaded(token, "image/jpeg", corrupt)
			return []string{good.MediaID, bad.MediaID}, []UploadTicket{good, bad}, true
		}},
		{"size other than declared", 422, "media-size-mismatch", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			tk := h.ticket(token, "image/jpeg", len(testenv.PhotoJPEG)+10)
			if status, body := h.putUpload(tk.UploadURL, tk.Headers, testenv.PhotoJPEG); status != 200 {
				h.t.Fatalf("upload: %d %s", status, body)
			}
			return []string{tk.MediaID}, []UploadTicket{tk}, true
		}},
		{"not uploaded yet", 422, "upload-incomplete", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			tk := h.ticket(token, "image/jpeg", 1000)
			return []string{tk.MediaID}, []UploadTicket{tk}, false
		}},
		{"never uploaded and expired", 422, "upload-expired", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			tk := h.ticket(token, "image/jpeg", 1000)
			h.now = h.now.Add(models.UploadTTL + time.Minute)
			return []string{tk.MediaID}, []UploadTicket{tk}, false
		}},
		{"uploaded too long ago", 422, "upload-expired", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			tk := h.uploaded(token, "image/jpeg", testenv.PhotoJPEG)
			h.now = h.now.Add(models.UploadTTL + models.UploadKeep + time.Minute)
			return []string{tk.MediaID}, []UploadTicket{tk}, true
		}},
		{"more ids than photos allowed", 422, "too-many-photos", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			var ids []string
			var tks []UploadTicket
			for range 7 {
				tk := h.ticket(token, "image/jpeg", 1000)
				ids, tks = append(ids, tk.MediaID), append(tks, tk)
			}
			return ids, tks, false
		}},
		{"the same id twice", 422, "duplicate-media", func(h *harness, token string) ([]string, []UploadTicket, bool) {
			tk := h.uploaded(token, "image/jpeg", testenv.PhotoJPEG)
			return []string{tk.MediaID, tk.MediaID}, []UploadTicket{tk}, true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			token := h.citizen("device-upload-refusals")
			ids, pend, uploaded := tt.setup(h, token)
			resp, _, p := h.report(token, "k", pothole(ids...))
			if resp.StatusCode != tt.status || p.Type != "urn:cityeyes:problem:"+tt.typ || p.Detail == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, p, tt.status, tt.typ)
			}
			h.nothingWritten()
			if n := h.count("SELECT COUNT(*) FROM media"); n != 0 {
				t.Fatalf("%d media rows after a refused report", n)
			}
			for _, tk := range pend {
				h.pending(tk, uploaded)
			}
		})
	}
}

// TestDirectUploadRetryAfterRefusal: a report refused for something else (its category)
// leaves its uploads pending, and the corrected report takes them.
func TestDirectUploadRetryAfterRefusal(t *testing.T) {
	h := newHarness(t)
	token := h.citizen("device-upload-retry")
	tk := h.uploaded(token, "image/jpeg", testenv.PhotoJPEG)
	bad := pothole(tk.MediaID)
	bad.Category = "dragon"
	if resp, _, p := h.report(token, "first", bad); resp.StatusCode != 422 || p.Type != "urn:cityeyes:problem:unknown-category" {
		t.Fatalf("bad category: %d %+v", resp.StatusCode, p)
	}
	h.nothingWritten()
	h.pending(tk, true)
	if resp, r, p := h.report(token, "second", pothole(tk.MediaID)); resp.StatusCode != 201 || len(r.Photos) != 1 {
		t.Fatalf("corrected report: %d %+v %+v", resp.StatusCode, r, p)
	}
}

// TestAskForUpload: what POST /v1/uploads refuses, leaving no reservation behind.
func TestAskForUpload(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		typ    string
	}{
		{"HEIC", `{"content_type":"image/heic","size":1000}`, 415, "unsupported-photo-type"},
		{"text", `{"content_type":"text/html","size":1000}`, 415, "unsupported-photo-type"},
		{"no type", `{"size":1000}`, 415, "unsupported-photo-type"},
		{"size zero", `{"content_type":"image/jpeg","size":0}`, 422, "invalid-size"},
		{"over the limit", fmt.Sprintf(`{"content_type":"image/jpeg","size":%d}`, testPhotoLimit+1), 413, "photo-too-large"},
		{"malformed JSON", `{"content_type":`, 400, "malformed-json"},
	}
	h := newHarness(t)
	token := h.citizen("device-ask")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := h.do("POST", "/v1/uploads", token, []byte(tt.body), "application/json")
			var p Problem
			_ = json.Unmarshal(data, &p)
			if resp.StatusCode != tt.status || p.Type != "urn:cityeyes:problem:"+tt.typ {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, data, tt.status, tt.typ)
			}
			if tt.name == "HEIC" && (!strings.Contains(p.Detail, "image/jpeg") || !strings.Contains(p.Detail, "image/png")) {
				t.Fatalf("the refusal does not name the accepted types: %s", p.Detail)
			}
		})
	}
	if n := h.count("SELECT COUNT(*) FROM uploads"); n != 0 {
		t.Fatalf("%d reservations after refusals", n)
	}
	// Staff may upload too (their photos' own routes may take them).
	h.ticket(h.staff("roads@test.example", "roads-pass"), "image/png", 1000)
}

// TestUploadURLRefusals: the upload URL works only as signed, only until it expires, and
// only for a photo within the limit; a refused upload stores nothing. MinIO enforces its
// own presigned URLs (checked here for the content type, the one thing a client may get
// wrong by mistake); the local store's are enforced by PUT /files/*.
func TestUploadURLRefusals(t *testing.T) {
	h := newHarness(t)
	token := h.citizen("device-url")
	if _, local := h.store.(*storage.Local); !local {
		tk := h.ticket(token, "image/jpeg", len(testenv.PhotoJPEG))
		status, body := h.putUpload(tk.UploadURL, map[string]string{"Content-Type": "text/html"}, testenv.PhotoJPEG)
		if status != 403 {
			t.Fatalf("MinIO, another content type: %d %s", status, body)
		}
		if objs := testenv.Objects(t, h.store, models.UploadPrefix); len(objs) != 0 {
			t.Fatalf("objects after a refused upload: %v", objs)
		}
		return
	}
	oversized := append(append([]byte{}, testenv.PhotoJPEG...), bytes.Repeat([]byte{0xAB}, testPhotoLimit)...)
	tests := []struct {
		name   string
		alter  func(u *url.URL, headers map[string]string)
		data   []byte
		later  time.Duration
		status int
		typ    string
	}{
		{"expired", nil, testenv.PhotoJPEG, models.UploadTTL + time.Minute, 403, "upload-url-expired"},
		{"signature altered", func(u *url.URL, _ map[string]string) {
			q := u.Query()
			sig := []byte(q.Get("sig"))
			sig[0] ^= 1
			q.Set("sig", string(sig))
			u.RawQuery = q.Encode()
		}, testenv.PhotoJPEG, 0, 403, "bad-signature"},
		{"key altered", func(u *url.URL, _ map[string]string) {
			u.Path = strings.Replace(u.Path, "/uploads/", "/cases/", 1)
		}, testenv.PhotoJPEG, 0, 403, "bad-signature"},
		{"expiry pushed back", func(u *url.URL, _ map[string]string) {
			q := u.Query()
			q.Set("expires", fmt.Sprint(time.Now().Add(time.Hour).Unix()))
			u.RawQuery = q.Encode()
		}, testenv.PhotoJPEG, 0, 403, "bad-signature"},
		{"signed type altered", func(u *url.URL, headers map[string]string) {
			q := u.Query()
			q.Set("ct", "text/html")
			u.RawQuery = q.Encode()
			headers["Content-Type"] = "text/html"
		}, testenv.PhotoJPEG, 0, 403, "bad-signature"},
		{"another content type sent", func(u *url.URL, headers map[string]string) {
			headers["Content-Type"] = "text/html"
		}, testenv.PhotoJPEG, 0, 403, "content-type-mismatch"},
		{"over the limit", nil, oversized, 0, 413, "photo-too-large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := h.now
			defer func() { h.now = start }()
			tk := h.ticket(token, "image/jpeg", len(testenv.PhotoJPEG))
			u, _ := url.Parse(tk.UploadURL)
			headers := map[string]string{"Content-Type": tk.Headers["Content-Type"]}
			if tt.alter != nil {
				tt.alter(u, headers)
			}
			h.now = h.now.Add(tt.later)
			status, body := h.putUpload(u.String(), headers, tt.data)
			var p Problem
			_ = json.Unmarshal(body, &p)
			if status != tt.status || p.Type != "urn:cityeyes:problem:"+tt.typ || p.Detail == "" {
				t.Fatalf("got %d %s, want %d %s", status, body, tt.status, tt.typ)
			}
			for _, prefix := range []string{models.UploadPrefix, "cases/"} {
				if objs := testenv.Objects(t, h.store, prefix); len(objs) != 0 {
					t.Fatalf("objects after a refused upload: %v", objs)
				}
			}
		})
	}
	// The same URL, as signed and in time, works; and works again to replace the photo.
	tk := h.ticket(token, "image/jpeg", len(testenv.PhotoJPEG))
	for range 2 {
		if status, body := h.putUpload(tk.UploadURL, tk.Headers, testenv.PhotoJPEG); status != 200 {
			t.Fatalf("upload as signed: %d %s", status, body)
		}
	}
	if objs := testenv.Objects(t, h.store, models.UploadPrefix); len(objs) != 1 {
		t.Fatalf("objects after the upload: %v", objs)
	}
}

// TestDirectUploadRace: two reports naming one upload at the same moment, under different
// keys: one is created with the photo, the other is refused with 409, and only the first's
// copy of the photo stays.
func TestDirectUploadRace(t *testing.T) {
	h := newHarness(t)
	token := h.citizen("device-upload-race")
	tk := h.uploaded(token, "image/jpeg", testenv.PhotoJPEG)
	body, _ := json.Marshal(pothole(tk.MediaID))
	statuses := make([]int, 2)
	done := make(chan struct{})
	for i := range statuses {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequest("POST", "/v1/reports", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Idempotency-Key", fmt.Sprint("race-", i))
			resp, err := h.app.Test(req, -1)
			if err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	<-done
	<-done
	if !(statuses[0] == 201 && statuses[1] == 409) && !(statuses[0] == 409 && statuses[1] == 201) {
		t.Fatalf("statuses %v, want one 201 and one 409", statuses)
	}
	if n := h.count("SELECT COUNT(*) FROM cases"); n != 1 {
		t.Fatalf("%d cases, want 1", n)
	}
	if objs := testenv.Objects(t, h.store, "cases/"); len(objs) != 1 {
		t.Fatalf("photo objects %v, want the one case's copy", objs)
	}
}

// replacingStore puts other bytes under an upload's key just before the store is asked to
// copy it under a case: a second PUT to the upload URL while the report is being read.
type replacingStore struct {
	storage.Store
	with []byte
}

func (s *replacingStore) Copy(ctx context.Context, src storage.Object, dst string) (storage.Object, error) {
	if _, err := s.Store.Put(ctx, src.Key, bytes.NewReader(s.with), int64(len(s.with)), src.ContentType); err != nil {
		return storage.Object{}, err
	}
	return s.Store.Copy(ctx, src, dst)
}

// TestDirectUploadReplacedMeanwhile: the case keeps exactly the bytes its report checked. An
// upload replaced between the check and the copy refuses the report with 409 and leaves
// nothing; a PUT to the URL after the report changes nothing of the case's photo.
func TestDirectUploadReplacedMeanwhile(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	token := h.citizen("device-upload-replaced")
	other := bytes.Clone(testenv.PhotoJPEG)
	other[len(other)-3] ^= 0xff // same size and type, other bytes

	// Replaced while the report is read: refused, nothing stored, the upload still pending.
	tk := h.uploaded(token, "image/jpeg", testenv.PhotoJPEG)
	app := h.app
	files, _ := h.store.(*storage.Local) // the local store serves its upload URLs; MinIO its own
	h.app = New(Config{DB: h.db, Store: &replacingStore{Store: h.store, with: other}, Files: files, Areas: h.areas.Load,
		JWTSecret: testenv.Secret, Now: func() time.Time { return h.now }, MaxPhotoBytes: testPhotoLimit})
	resp, _, p := h.report(token, "replaced-1", pothole(tk.MediaID))
	if resp.StatusCode != 409 || p.Type != "urn:cityeyes:problem:upload-changed" {
		t.Fatalf("report over an upload replaced meanwhile: %d %+v", resp.StatusCode, p)
	}
	if n := h.count("SELECT COUNT(*) FROM cases"); n != 0 {
		t.Fatalf("%d cases after the refusal", n)
	}
	if objs := testenv.Objects(t, h.store, "cases/"); len(objs) != 0 {
		t.Fatalf("objects under cases/ after the refusal: %v", objs)
	}
	if n := h.count("SELECT COUNT(*) FROM uploads"); n != 1 {
		t.Fatalf("%d upload rows after the refusal, want the upload still pending", n)
	}

	// Filed, then PUT again through the same (still valid) URL: the case's photo is the first.
	h.app = app
	tk = h.uploaded(token, "image/jpeg", testenv.PhotoJPEG)
	resp, r, p := h.report(token, "replaced-2", pothole(tk.MediaID))
	if resp.StatusCode != 201 {
		t.Fatalf("report: %d %+v", resp.StatusCode, p)
	}
	if status, body := h.putUpload(tk.UploadURL, tk.Headers, other); status != 200 {
		t.Fatalf("second PUT to the URL: %d %s", status, body)
	}
	ms, err := h.db.CaseMedia(ctx, r.ID)
	if err != nil || len(ms) != 1 {
		t.Fatalf("media: %v %+v", err, ms)
	}
	rc, _, err := h.store.Get(ctx, ms[0].ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	sum := sha256.Sum256(got)
	if !bytes.Equal(got, testenv.PhotoJPEG) || hex.EncodeToString(sum[:]) != ms[0].SHA256 {
		t.Fatal("the case's photo changed with a PUT to the upload URL after the report")
	}
}
