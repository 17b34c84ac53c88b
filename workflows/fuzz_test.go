package workflows

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// What intake checks before a photo is stored, and so before this task ever sees it
// (api.receivePhoto with the default api.Config): the type by its bytes, the dimensions from
// the first sniffBytes, the pixel count and the size.
const (
	intakeSniffBytes = 256 << 10
	intakeMaxPixels  = 50_000_000
	intakeMaxBytes   = 20 << 20
)

// intakeAccepts reports whether intake would store b as a photo, and its dimensions.
func intakeAccepts(b []byte) (image.Config, bool) {
	if len(b) == 0 || len(b) > intakeMaxBytes {
		return image.Config{}, false
	}
	head := b[:min(len(b), intakeSniffBytes)]
	switch http.DetectContentType(head) {
	case "image/jpeg", "image/png":
	default:
		return image.Config{}, false
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(head))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > intakeMaxPixels {
		return image.Config{}, false
	}
	return cfg, true
}

// FuzzPhoto feeds arbitrary bytes to the photo task's image path (makeVersions: decode,
// orient by EXIF, re-encode). Inputs intake would refuse (not JPEG or PNG by their bytes,
// unreadable dimensions, over 50 megapixels) are skipped before decoding, as they never
// reach the task. For the rest it must not panic, may only fail as undecodable, and what it
// makes must be JPEGs without EXIF (nor any other APPn or comment segment), within the
// version's bound, and the source's shape: its dimensions fitted, turned or not.
func FuzzPhoto(f *testing.F) {
	f.Add(testenv.PhotoJPEG)
	f.Add(testenv.PhotoPortrait6)
	for _, name := range []string{"DSCN0021.jpg", "jolla.jpg"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Small synthetic ones the mutator can work on quickly: grey, colour, PNG with alpha,
	// a wide strip and a cut-short JPEG.
	small := func(w, h int, enc func(*bytes.Buffer, image.Image) error) []byte {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.Set(x, y, color.NRGBA{uint8(x * 40), uint8(y * 40), uint8(x ^ y), uint8(128 + x)})
			}
		}
		var buf bytes.Buffer
		if err := enc(&buf, img); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	jpg := func(b *bytes.Buffer, img image.Image) error { return jpeg.Encode(b, img, &jpeg.Options{Quality: 50}) }
	pngEnc := func(b *bytes.Buffer, img image.Image) error { return png.Encode(b, img) }
	f.Add(small(3, 2, jpg))
	f.Add(small(6, 5, pngEnc))
	f.Add(small(2000, 1, pngEnc))
	f.Add(small(16, 16, jpg)[:200])
	f.Add(withOrientation(small(4, 2, jpg), 6))
	f.Add(withOrientation(small(4, 2, jpg), 8))

	f.Fuzz(func(t *testing.T, b []byte) {
		src, ok := intakeAccepts(b)
		if !ok {
			return
		}
		display, thumb, err := makeVersions(bytes.NewReader(b))
		if err != nil {
			var bad *undecodableError
			if !errors.As(err, &bad) {
				t.Fatalf("makeVersions failed other than as undecodable: %v", err)
			}
			return
		}
		dw, dh := checkVersion(t, "display", display, displaySize)
		tw, th := checkVersion(t, "thumbnail", thumb, thumbSize)
		// Oriented means turned a quarter or not at all: the versions are the source's
		// dimensions fitted, as they are or swapped, and both the same way.
		turned := -1
		for i, wh := range [][2]int{{src.Width, src.Height}, {src.Height, src.Width}} {
			if fitted(wh[0], wh[1], displaySize) == [2]int{dw, dh} && fitted(wh[0], wh[1], thumbSize) == [2]int{tw, th} {
				turned = i
			}
		}
		if turned < 0 {
			t.Fatalf("source %dx%d gave display %dx%d and thumbnail %dx%d: not its shape fitted", src.Width, src.Height, dw, dh, tw, th)
		}
	})
}

// checkVersion checks that b is a JPEG with no APPn (EXIF is APP1) or comment segment,
// decodes whole and fits in bound×bound; it returns its dimensions.
func checkVersion(t *testing.T, name string, b []byte, bound int) (w, h int) {
	t.Helper()
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		t.Fatalf("%s is not a JPEG: % x", name, b[:min(len(b), 8)])
	}
	// Walk the segments up to the scan: Go's encoder writes only tables and the frame.
	for i := 2; ; {
		if i+4 > len(b) || b[i] != 0xff {
			t.Fatalf("%s: broken segment at %d", name, i)
		}
		m := b[i+1]
		if m >= 0xe0 && m <= 0xef || m == 0xfe {
			t.Fatalf("%s carries an APP%d/COM segment (0xff%02x): metadata survived", name, m-0xe0, m)
		}
		if m == 0xda { // start of scan
			break
		}
		i += 2 + (int(b[i+2])<<8 | int(b[i+3]))
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s does not decode as JPEG: %v", name, err)
	}
	w, h = img.Bounds().Dx(), img.Bounds().Dy()
	if w < 1 || h < 1 || w > bound || h > bound {
		t.Fatalf("%s is %dx%d; the bound is %d", name, w, h, bound)
	}
	return w, h
}

// fitted is imaging.Fit's arithmetic: the size of a w×h image fitted into bound×bound.
func fitted(w, h, bound int) [2]int {
	if w <= bound && h <= bound {
		return [2]int{w, h}
	}
	ratio := float64(w) / float64(h)
	if ratio > 1 { // bound×bound: the maximum aspect ratio is 1
		nh := int(float64(bound) / ratio)
		if nh == 0 { // imaging.Resize: a zero side keeps the aspect ratio, at least 1 pixel
			nh = max(1, int(float64(bound)*float64(h)/float64(w)+0.5))
		}
		return [2]int{bound, nh}
	}
	nw := int(float64(bound) * ratio)
	if nw == 0 {
		nw = max(1, int(float64(bound)*float64(w)/float64(h)+0.5))
	}
	return [2]int{nw, bound}
}

// withOrientation inserts an EXIF APP1 segment with the orientation tag right after a
// JPEG's SOI marker.
func withOrientation(jpg []byte, o uint16) []byte {
	tiff := []byte{'M', 'M', 0, 42, 0, 0, 0, 8, // big-endian, first IFD at 8
		0, 1, // one entry
		0x01, 0x12, 0, 3, 0, 0, 0, 1, byte(o >> 8), byte(o), 0, 0, // orientation, SHORT, 1
		0, 0, 0, 0} // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff...)
	n := len(payload) + 2
	seg := append([]byte{0xff, 0xe1, byte(n >> 8), byte(n)}, payload...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}
