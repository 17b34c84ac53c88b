package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/gofiber/fiber/v2/middleware/etag"

	"github.com/city-eyes/cityeyes/models"
)

// dashboardFiles is the staff dashboard: one HTML page, its stylesheet and plain JavaScript
// modules, served from the binary as they are (no build step, nothing from a CDN), so the
// dashboard works wherever the API runs, offline included.
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardTypes are the media types of the dashboard's files, by extension; a file of any
// other kind is not served.
var dashboardTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// dashboardCSP lets the page run only its own scripts and styles and talk only to its own
// API. Photos are the exception: their signed URLs may point at the object store (MinIO),
// another origin.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data: http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// dashboardRoutes mounts the routes of the staff dashboard: the page and its files, and the
// city's areas it draws its map with.
func (s *Server) dashboardRoutes(app *fiber.App, v1 fiber.Router) {
	// The page and its files change only with the binary; an ETag lets the browser keep
	// them and ask cheaply whether they are still current.
	app.Get("/dashboard", compress.New(), etag.New(), func(c *fiber.Ctx) error { return s.dashboardFile(c, "index.html") })
	app.Get("/dashboard/:file", compress.New(), etag.New(), func(c *fiber.Ctx) error { return s.dashboardFile(c, c.Params("file")) })
	staff := s.auth(models.RoleHandler, models.RoleSupervisor, models.RoleAdmin)
	v1.Get("/areas", staff, compress.New(), etag.New(), s.mapAreas)
}

// dashboardFile serves one of the dashboard's files (GET /dashboard, GET /dashboard/{file}).
func (s *Server) dashboardFile(c *fiber.Ctx, name string) error {
	ctype, ok := dashboardTypes[path.Ext(name)]
	if !ok || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return models.Problemf(models.ErrNotFound, "no-such-file", "the dashboard has no file %q", name)
	}
	data, err := dashboardFiles.ReadFile("dashboard/" + name)
	if errors.Is(err, fs.ErrNotExist) {
		return models.Problemf(models.ErrNotFound, "no-such-file", "the dashboard has no file %q", name)
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("Content-Security-Policy", dashboardCSP)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	return c.Send(data)
}

// AreaFeature is one area of a city as a GeoJSON Feature; its geometry is the one the
// city's configuration gave, as stored.
type AreaFeature struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Properties AreaProperties  `json:"properties"`
	Geometry   json.RawMessage `json:"geometry"`
}

// AreaProperties name an area.
type AreaProperties struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// AreaCollection is a city's areas as a GeoJSON FeatureCollection. The city itself is a
// foreign member (RFC 7946, section 6.1), which GeoJSON readers ignore.
type AreaCollection struct {
	Type         string          `json:"type"`
	Jurisdiction JurisdictionRef `json:"jurisdiction"`
	Features     []AreaFeature   `json:"features"`
}

// mapAreas answers the caller's city's areas as GeoJSON (GET /v1/areas), for maps. The
// answer changes only when the city is configured again, so clients may keep it for a few
// minutes and then revalidate it by its ETag.
func (s *Server) mapAreas(c *fiber.Ctx) error {
	ctx := c.UserContext()
	j, err := s.db.Jurisdiction(ctx, caller(c).JurisdictionID)
	if err != nil {
		return err
	}
	areas, err := s.db.JurisdictionAreas(ctx, j.ID)
	if err != nil {
		return err
	}
	out := AreaCollection{Type: "FeatureCollection", Jurisdiction: JurisdictionRef{ID: j.ID, Name: j.Name},
		Features: make([]AreaFeature, 0, len(areas))}
	for _, a := range areas {
		geom := json.RawMessage(a.Geometry)
		if !json.Valid(geom) {
			// Geometry is checked when a city is configured; a row that is not JSON any
			// more must not break the whole map.
			s.log.Warn("area geometry is not JSON", "jurisdiction", a.JurisdictionID, "area", a.Code)
			geom = json.RawMessage("null")
		}
		out.Features = append(out.Features, AreaFeature{Type: "Feature", ID: a.Code,
			Properties: AreaProperties{Code: a.Code, Name: a.Name}, Geometry: geom})
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(out); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/geo+json")
	c.Set(fiber.HeaderCacheControl, "private, max-age=300")
	return c.Send(buf.Bytes())
}
