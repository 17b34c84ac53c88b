package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/paulmach/orb/geojson"

	"github.com/city-eyes/cityeyes/models"
)

// City administration: an administrator changes their own city's settings, departments,
// categories (with their questions and SLAs), areas and routing rules. Every change goes
// through models.UpdateCityConfig: the city's configuration is read back, edited, checked as
// a configuration file is checked and applied, all in one transaction, so the API can allow
// nothing a file could not say and `cityeyes config export` always shows the result. A bad
// change is refused with 422 naming the entry, and nothing of it is applied.

// adminRoutes mounts the routes of city administration.
func (s *Server) adminRoutes(app *fiber.App, v1 fiber.Router) {
	admin := s.auth(models.RoleAdmin)
	v1.Get("/admin/config", admin, s.getCityConfig)
	v1.Get("/admin/settings", admin, s.getSettings)
	v1.Patch("/admin/settings", admin, s.patchSettings)
	v1.Get("/admin/departments", admin, s.listDepartments)
	v1.Post("/admin/departments", admin, s.createDepartment)
	v1.Patch("/admin/departments/:code", admin, s.updateDepartment)
	v1.Get("/admin/categories", admin, s.listAdminCategories)
	v1.Post("/admin/categories", admin, s.createCategory)
	v1.Put("/admin/categories/:code", admin, s.putCategory)
	v1.Delete("/admin/categories/:code", admin, s.deleteCategory)
	v1.Get("/admin/areas", admin, s.listAreas)
	v1.Put("/admin/areas", admin, s.putAreas)
	v1.Post("/admin/areas", admin, s.postAreas)
	v1.Get("/admin/routing", admin, s.listRouting)
	v1.Put("/admin/routing", admin, s.putRouting)
	v1.Put("/admin/routing/:category/:area", admin, s.putRule)
	v1.Delete("/admin/routing/:category/:area", admin, s.deleteRule)
}

// Settings are a city's own settings (GET and PATCH /v1/admin/settings).
type Settings struct {
	ID                 string           `json:"id"`
	Name               string           `json:"name"`
	Timezone           string           `json:"timezone"`
	Calendar           *models.Calendar `json:"calendar"`
	ConfirmWindowHours int              `json:"confirm_window_hours"`
	EscalationHours    int              `json:"escalation_hours"`
	TriageDepartment   string           `json:"triage_department"`
	Boundary           json.RawMessage  `json:"boundary"`
}

// SettingsChange changes the fields sent; "calendar": null or "boundary": null removes them.
type SettingsChange struct {
	Name               *string         `json:"name"`
	Timezone           *string         `json:"timezone"`
	Calendar           json.RawMessage `json:"calendar"`
	ConfirmWindowHours *int            `json:"confirm_window_hours"`
	EscalationHours    *int            `json:"escalation_hours"`
	TriageDepartment   *string         `json:"triage_department"`
	Boundary           json.RawMessage `json:"boundary"`
}

// DepartmentBody is a department as the admin API shows and takes it.
type DepartmentBody struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// RuleBody is a routing rule: the category's cases in the area go to the department.
type RuleBody struct {
	Category   string `json:"category"`
	Area       string `json:"area"`
	Department string `json:"department"`
}

// AreaSummary is an area as a change of areas reports it.
type AreaSummary struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// update applies one change to the caller's city's configuration.
func (s *Server) update(c *fiber.Ctx, change func(cfg *models.CityConfig) error) (*models.CityConfig, error) {
	jid := caller(c).JurisdictionID
	if _, err := s.db.UpdateCityConfig(c.UserContext(), jid, change, s.now()); err != nil {
		return nil, err
	}
	return s.db.ExportCityConfig(c.UserContext(), jid)
}

func (s *Server) current(c *fiber.Ctx) (*models.CityConfig, error) {
	return s.db.ExportCityConfig(c.UserContext(), caller(c).JurisdictionID)
}

// getCityConfig is the whole configuration, as `cityeyes config export` writes it, in JSON
// (GET /v1/admin/config).
func (s *Server) getCityConfig(c *fiber.Ctx) error {
	cfg, err := s.current(c)
	if err != nil {
		return err
	}
	return c.JSON(cfg)
}

func toSettings(cfg *models.CityConfig) Settings {
	j := cfg.Jurisdiction
	st := Settings{ID: j.ID, Name: j.Name, Timezone: j.Timezone, Calendar: j.Calendar, TriageDepartment: cfg.TriageDepartment, Boundary: j.Boundary}
	if j.ConfirmWindowHours != nil {
		st.ConfirmWindowHours = *j.ConfirmWindowHours
	}
	if j.EscalationHours != nil {
		st.EscalationHours = *j.EscalationHours
	}
	if len(st.Boundary) == 0 {
		st.Boundary = json.RawMessage("null")
	}
	return st
}

// getSettings shows the city's settings (GET /v1/admin/settings).
func (s *Server) getSettings(c *fiber.Ctx) error {
	cfg, err := s.current(c)
	if err != nil {
		return err
	}
	return c.JSON(toSettings(cfg))
}

// patchSettings changes the city's settings (PATCH /v1/admin/settings).
func (s *Server) patchSettings(c *fiber.Ctx) error {
	var req SettingsChange
	if err := readJSON(c, &req, 1<<20); err != nil {
		return err
	}
	cfg, err := s.update(c, func(cfg *models.CityConfig) error {
		j := &cfg.Jurisdiction
		if req.Name != nil {
			j.Name = *req.Name
		}
		if req.Timezone != nil {
			j.Timezone = *req.Timezone
		}
		if req.ConfirmWindowHours != nil {
			j.ConfirmWindowHours = req.ConfirmWindowHours
		}
		if req.EscalationHours != nil {
			j.EscalationHours = req.EscalationHours
		}
		if req.TriageDepartment != nil {
			cfg.TriageDepartment = *req.TriageDepartment
		}
		if req.Calendar != nil {
			j.Calendar = nil
			if string(req.Calendar) != "null" {
				var cal models.Calendar
				if err := strictJSON(req.Calendar, &cal); err != nil {
					return models.Problemf(models.ErrInvalid, "bad-city-config", "calendar: %v", err)
				}
				j.Calendar = &cal
			}
		}
		if req.Boundary != nil {
			j.Boundary = nil
			if string(req.Boundary) != "null" {
				j.Boundary = req.Boundary
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(toSettings(cfg))
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// listDepartments lists the city's departments (GET /v1/admin/departments).
func (s *Server) listDepartments(c *fiber.Ctx) error {
	cfg, err := s.current(c)
	if err != nil {
		return err
	}
	return c.JSON(departmentBodies(cfg))
}

func departmentBodies(cfg *models.CityConfig) []DepartmentBody {
	out := []DepartmentBody{}
	for _, d := range cfg.Departments {
		out = append(out, DepartmentBody(d))
	}
	return out
}

// createDepartment adds a department (POST /v1/admin/departments).
func (s *Server) createDepartment(c *fiber.Ctx) error {
	var req DepartmentBody
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	if _, err := s.update(c, func(cfg *models.CityConfig) error {
		cfg.Departments = append(cfg.Departments, models.DepartmentConfig(req))
		return nil
	}); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(req)
}

// updateDepartment renames a department (PATCH /v1/admin/departments/{code}). Departments
// are never removed: cases and staff keep pointing at them.
func (s *Server) updateDepartment(c *fiber.Ctx) error {
	var req DepartmentBody
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	code := c.Params("code")
	var out DepartmentBody
	_, err := s.update(c, func(cfg *models.CityConfig) error {
		i := slices.IndexFunc(cfg.Departments, func(d models.DepartmentConfig) bool { return d.Code == code })
		if i < 0 {
			return models.Problemf(models.ErrNotFound, "not-found", "no department %q in this city", code)
		}
		if req.Code != "" && req.Code != code {
			return models.Problemf(models.ErrInvalid, "bad-city-config", "departments: a department's code cannot change (%q)", code)
		}
		if req.Name != "" {
			cfg.Departments[i].Name = req.Name
		}
		out = DepartmentBody(cfg.Departments[i])
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(out)
}

// listAdminCategories lists the city's categories with their questions, SLAs and duplicate
// settings (GET /v1/admin/categories).
func (s *Server) listAdminCategories(c *fiber.Ctx) error {
	cfg, err := s.current(c)
	if err != nil {
		return err
	}
	out := cfg.Categories
	if out == nil {
		out = []models.CategoryConfig{}
	}
	return c.JSON(out)
}

func (s *Server) readCategory(c *fiber.Ctx) (models.CategoryConfig, error) {
	var req models.CategoryConfig
	if err := readJSON(c, &req, 256<<10); err != nil {
		return req, err
	}
	return req, nil
}

// createCategory adds a category (POST /v1/admin/categories).
func (s *Server) createCategory(c *fiber.Ctx) error {
	req, err := s.readCategory(c)
	if err != nil {
		return err
	}
	cfg, err := s.update(c, func(cfg *models.CityConfig) error {
		cfg.Categories = append(cfg.Categories, req)
		return nil
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(findCategory(cfg, req.Code))
}

func findCategory(cfg *models.CityConfig, code string) models.CategoryConfig {
	for _, c := range cfg.Categories {
		if c.Code == code {
			return c
		}
	}
	return models.CategoryConfig{Code: code}
}

// putCategory replaces a category (PUT /v1/admin/categories/{code}).
func (s *Server) putCategory(c *fiber.Ctx) error {
	req, err := s.readCategory(c)
	if err != nil {
		return err
	}
	code := c.Params("code")
	if req.Code == "" {
		req.Code = code
	}
	cfg, err := s.update(c, func(cfg *models.CityConfig) error {
		if req.Code != code {
			return models.Problemf(models.ErrInvalid, "bad-city-config", "categories: the code in the body (%q) is not the one in the path (%q)", req.Code, code)
		}
		i := slices.IndexFunc(cfg.Categories, func(x models.CategoryConfig) bool { return x.Code == code })
		if i < 0 {
			return models.Problemf(models.ErrNotFound, "not-found", "no category %q in this city", code)
		}
		cfg.Categories[i] = req
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(findCategory(cfg, code))
}

// deleteCategory retires a category (DELETE /v1/admin/categories/{code}): no new reports,
// its cases stay. Its routing rules must go first.
func (s *Server) deleteCategory(c *fiber.Ctx) error {
	code := c.Params("code")
	_, err := s.update(c, func(cfg *models.CityConfig) error {
		i := slices.IndexFunc(cfg.Categories, func(x models.CategoryConfig) bool { return x.Code == code })
		if i < 0 {
			return models.Problemf(models.ErrNotFound, "not-found", "no category %q in this city", code)
		}
		cfg.Categories = slices.Delete(cfg.Categories, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// listAreas gives the city's areas as a GeoJSON FeatureCollection, each feature's id its
// code (GET /v1/admin/areas): what PUT takes back.
func (s *Server) listAreas(c *fiber.Ctx) error {
	cfg, err := s.current(c)
	if err != nil {
		return err
	}
	if len(cfg.Areas) == 0 {
		return c.JSON(fiber.Map{"type": "FeatureCollection", "features": []any{}})
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(cfg.Areas)
}

// readAreas reads an uploaded FeatureCollection (up to 32 MiB: a city's worth of polygons).
func readAreas(c *fiber.Ctx) (*geojson.FeatureCollection, error) {
	var raw json.RawMessage
	if err := readJSON(c, &raw, 32<<20); err != nil {
		return nil, err
	}
	fc, err := geojson.UnmarshalFeatureCollection(raw)
	if err != nil {
		return nil, models.Problemf(models.ErrInvalid, "bad-city-config", "areas: not a GeoJSON FeatureCollection: %v", err)
	}
	return fc, nil
}

func areaSummaries(cfg *models.CityConfig) ([]AreaSummary, error) {
	out := []AreaSummary{}
	if len(cfg.Areas) == 0 {
		return out, nil
	}
	fc, err := geojson.UnmarshalFeatureCollection(cfg.Areas)
	if err != nil {
		return nil, err
	}
	for _, f := range fc.Features {
		name, _ := f.Properties["name"].(string)
		out = append(out, AreaSummary{Code: fmt.Sprint(f.ID), Name: name})
	}
	return out, nil
}

// putAreas replaces the city's areas with the uploaded FeatureCollection
// (PUT /v1/admin/areas); areas not in it are retired.
func (s *Server) putAreas(c *fiber.Ctx) error {
	fc, err := readAreas(c)
	if err != nil {
		return err
	}
	return s.setAreas(c, func(*geojson.FeatureCollection) *geojson.FeatureCollection { return fc })
}

// postAreas adds the uploaded areas, replacing those with the same code
// (POST /v1/admin/areas).
func (s *Server) postAreas(c *fiber.Ctx) error {
	fc, err := readAreas(c)
	if err != nil {
		return err
	}
	return s.setAreas(c, func(cur *geojson.FeatureCollection) *geojson.FeatureCollection {
		added := map[string]bool{}
		for _, f := range fc.Features {
			added[featureCode(f)] = true
		}
		out := geojson.NewFeatureCollection()
		for _, f := range cur.Features {
			if !added[featureCode(f)] {
				out.Append(f)
			}
		}
		for _, f := range fc.Features {
			out.Append(f)
		}
		return out
	})
}

// featureCode is an area feature's code, as the configuration reads it.
func featureCode(f *geojson.Feature) string {
	if c, ok := f.Properties["code"].(string); ok && c != "" {
		return c
	}
	return fmt.Sprint(f.ID)
}

func (s *Server) setAreas(c *fiber.Ctx, edit func(cur *geojson.FeatureCollection) *geojson.FeatureCollection) error {
	cfg, err := s.update(c, func(cfg *models.CityConfig) error {
		cur := geojson.NewFeatureCollection()
		if len(cfg.Areas) > 0 {
			var err error
			if cur, err = geojson.UnmarshalFeatureCollection(cfg.Areas); err != nil {
				return err
			}
		}
		b, err := json.Marshal(edit(cur))
		if err != nil {
			return err
		}
		cfg.Areas = b
		return nil
	})
	if err != nil {
		return err
	}
	out, err := areaSummaries(cfg)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func ruleBodies(cfg *models.CityConfig) []RuleBody {
	out := []RuleBody{}
	for _, r := range cfg.Routing {
		out = append(out, RuleBody(r))
	}
	return out
}

// listRouting lists the city's routing rules (GET /v1/admin/routing).
func (s *Server) listRouting(c *fiber.Ctx) error {
	cfg, err := s.current(c)
	if err != nil {
		return err
	}
	return c.JSON(ruleBodies(cfg))
}

// putRouting replaces every routing rule (PUT /v1/admin/routing).
func (s *Server) putRouting(c *fiber.Ctx) error {
	var req []RuleBody
	if err := readJSON(c, &req, 4<<20); err != nil {
		return err
	}
	cfg, err := s.update(c, func(cfg *models.CityConfig) error {
		cfg.Routing = nil
		for _, r := range req {
			cfg.Routing = append(cfg.Routing, models.RoutingConfig(r))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(ruleBodies(cfg))
}

// putRule sets the department of one category in one area
// (PUT /v1/admin/routing/{category}/{area}).
func (s *Server) putRule(c *fiber.Ctx) error {
	var req RuleBody
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	rule := models.RoutingConfig{Category: c.Params("category"), Area: c.Params("area"), Department: req.Department}
	_, err := s.update(c, func(cfg *models.CityConfig) error {
		i := slices.IndexFunc(cfg.Routing, func(r models.RoutingConfig) bool { return r.Category == rule.Category && r.Area == rule.Area })
		if i < 0 {
			cfg.Routing = append(cfg.Routing, rule)
		} else {
			cfg.Routing[i] = rule
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(RuleBody(rule))
}

// deleteRule removes one routing rule (DELETE /v1/admin/routing/{category}/{area}): the
// category's cases there go to its default department again.
func (s *Server) deleteRule(c *fiber.Ctx) error {
	category, area := c.Params("category"), c.Params("area")
	_, err := s.update(c, func(cfg *models.CityConfig) error {
		i := slices.IndexFunc(cfg.Routing, func(r models.RoutingConfig) bool { return r.Category == category && r.Area == area })
		if i < 0 {
			return models.Problemf(models.ErrNotFound, "not-found", "no routing rule for %q in %q", category, area)
		}
		cfg.Routing = slices.Delete(cfg.Routing, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
