package models

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"
)

// CityConfig is a city's whole configuration, in the file format of CONTRACT.md ("City
// configuration file"). YAML and JSON read the same.
type CityConfig struct {
	Jurisdiction struct {
		ID       string          `json:"id"`
		Name     string          `json:"name"`
		Timezone string          `json:"timezone"`
		Boundary json.RawMessage `json:"boundary,omitempty"`
		// Calendar is when deadlines run: working hours and holidays; none means around
		// the clock.
		Calendar *Calendar `json:"calendar,omitempty"`
		// ConfirmWindowHours is how long a reporter may confirm or reopen a resolved case
		// before it closes by itself (default 168: a week).
		ConfirmWindowHours *int `json:"confirm_window_hours,omitempty"`
		// EscalationHours is the working time between escalation levels of an overdue case
		// (default 24).
		EscalationHours *int `json:"escalation_hours,omitempty"`
	} `json:"jurisdiction"`
	// Areas is a GeoJSON FeatureCollection, or the path of one relative to the file.
	Areas            json.RawMessage    `json:"areas"`
	Departments      []DepartmentConfig `json:"departments"`
	Categories       []CategoryConfig   `json:"categories"`
	Routing          []RoutingConfig    `json:"routing"`
	TriageDepartment string             `json:"triage_department"`
	Staff            []StaffConfig      `json:"staff"`
	Open311APIKeys   []APIKeyConfig     `json:"open311_api_keys"`

	// Retention is how long personal data is kept (docs/privacy.md); absent, the defaults.
	Retention *RetentionConfig `json:"retention,omitempty"`

	areas []AreaConfig // parsed from Areas by ParseCityConfig
	// Warnings are what ParseCityConfig mended rather than refused.
	Warnings []string `json:"-"`
}

// DepartmentConfig is a department of a city configuration.
type DepartmentConfig struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// CategoryConfig is a category of a city configuration.
type CategoryConfig struct {
	Code        string      `json:"code"`
	Name        string      `json:"name"`
	Group       string      `json:"group"`
	Description string      `json:"description,omitempty"`
	Department  string      `json:"department"`
	SLAHours    int         `json:"sla_hours"`
	Attributes  []Attribute `json:"attributes,omitempty"`
	// AfterPhoto is "required" when resolving needs an "after" photo, else "optional".
	AfterPhoto string `json:"after_photo,omitempty"`
	// Sensitive shows only an approximate place of its reports in public.
	Sensitive bool `json:"sensitive,omitempty"`
	// DuplicateRadiusM (default 50) and DuplicateWindowHours (default 720) define likely
	// duplicates: open reports of the category that near, filed that recently.
	DuplicateRadiusM     int `json:"duplicate_radius_m,omitempty"`
	DuplicateWindowHours int `json:"duplicate_window_hours,omitempty"`
}

// Attribute is a question a category asks the reporter (an Open311 attribute).
type Attribute struct {
	Code        string           `json:"code"`
	Datatype    string           `json:"datatype"`
	Required    bool             `json:"required"`
	Description string           `json:"description"`
	Order       int              `json:"order,omitempty"`
	Values      []AttributeValue `json:"values,omitempty"`
}

// AttributeValue is one choice of a list question.
type AttributeValue struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// RoutingConfig is a routing rule of a city configuration.
type RoutingConfig struct {
	Category   string `json:"category"`
	Area       string `json:"area"`
	Department string `json:"department"`
}

// StaffConfig is a member of staff of a city configuration; the password is only the
// initial one and is not changed by applying the file again.
type StaffConfig struct {
	Email      string `json:"email"`
	Name       string `json:"name"`
	Role       Role   `json:"role"`
	Department string `json:"department,omitempty"`
	Password   string `json:"password,omitempty"`
}

// APIKeyConfig is an Open311 client's key.
type APIKeyConfig struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// AreaConfig is one area read from the areas FeatureCollection.
type AreaConfig struct {
	Code     string
	Name     string
	Geometry string
}

var datatypes = map[string]bool{"string": true, "number": true, "datetime": true, "text": true, "singlevaluelist": true, "multivaluelist": true}

// ParseCityConfig reads a city configuration and checks it whole. readFile reads files the
// configuration names (the areas), relative to the configuration's own directory. Every
// problem found is reported, each naming the entry it is about.
func ParseCityConfig(data []byte, readFile func(name string) ([]byte, error)) (*CityConfig, error) {
	var cfg CityConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, Problemf(ErrInvalid, "bad-city-config", "city configuration: %v", err)
	}
	raw := bytes.TrimSpace(cfg.Areas)
	if len(raw) > 0 && raw[0] == '"' {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return nil, err
		}
		b, err := readFile(path.Clean(name))
		if err != nil {
			return nil, Problemf(ErrInvalid, "bad-city-config", "areas: cannot read %q: %v", name, err)
		}
		raw = b
	}
	var errs []string
	if len(raw) > 0 {
		fc, err := geojson.UnmarshalFeatureCollection(raw)
		if err != nil {
			errs = append(errs, fmt.Sprintf("areas: not a GeoJSON FeatureCollection: %v", err))
		} else {
			for i, f := range fc.Features {
				code := fmt.Sprint(f.ID)
				if c, ok := f.Properties["code"].(string); ok && c != "" {
					code = c
				}
				if f.ID == nil && code == "<nil>" {
					errs = append(errs, fmt.Sprintf("areas: feature %d has neither an id nor properties.code", i))
					continue
				}
				name, _ := f.Properties["name"].(string)
				if name == "" {
					name = code
				}
				geom, closed := closeRings(f.Geometry)
				if closed > 0 {
					cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("areas: feature %d (%s): closed %d ring(s) whose last point did not repeat the first", i, code, closed))
				}
				g, err := json.Marshal(geojson.NewGeometry(geom))
				if err == nil {
					_, err = ParseArea(string(g))
				}
				if err != nil {
					errs = append(errs, fmt.Sprintf("areas: feature %d (%s): %v", i, code, err))
					continue
				}
				cfg.areas = append(cfg.areas, AreaConfig{Code: code, Name: name, Geometry: string(g)})
			}
		}
	}
	errs = append(errs, cfg.check()...)
	if len(errs) > 0 {
		return nil, Problemf(ErrInvalid, "bad-city-config", "city configuration has %d problem(s): %s", len(errs), strings.Join(errs, "; "))
	}
	return &cfg, nil
}

// closeRings closes polygon rings whose last point does not repeat the first. Real open
// data has such rings (4 of the 188 NYC neighbourhoods), and closing them is what GIS tools
// do; it is reported as a warning, not hidden.
func closeRings(g orb.Geometry) (orb.Geometry, int) {
	n := 0
	fix := func(p orb.Polygon) orb.Polygon {
		out := make(orb.Polygon, len(p))
		for i, r := range p {
			if len(r) >= 3 && r[0] != r[len(r)-1] {
				r = append(r[:len(r):len(r)], r[0])
				n++
			}
			out[i] = r
		}
		return out
	}
	switch g := g.(type) {
	case orb.Polygon:
		return fix(g), n
	case orb.MultiPolygon:
		out := make(orb.MultiPolygon, len(g))
		for i, p := range g {
			out[i] = fix(p)
		}
		return out, n
	}
	return g, 0
}

// AreaCount is the number of areas the configuration defines.
func (cfg *CityConfig) AreaCount() int { return len(cfg.areas) }

// check finds every inconsistency of a configuration: missing names, duplicates, and
// references to departments, categories and areas that it does not define.
func (cfg *CityConfig) check() []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	j := cfg.Jurisdiction
	if j.ID == "" || strings.ContainsAny(j.ID, " /") {
		bad("jurisdiction.id %q: must be a short identifier without spaces or slashes", j.ID)
	}
	if j.Name == "" {
		bad("jurisdiction.name is missing")
	}
	if _, err := time.LoadLocation(j.Timezone); err != nil || j.Timezone == "" {
		bad("jurisdiction.timezone %q is not an IANA time zone such as America/New_York", j.Timezone)
	}
	if _, err := time.LoadLocation(j.Timezone); j.Calendar != nil && err == nil && j.Timezone != "" {
		cal := *j.Calendar
		cal.Timezone = j.Timezone
		if _, err := ParseCalendar(cal); err != nil {
			bad("jurisdiction.calendar: %v", err)
		}
	}
	if j.ConfirmWindowHours != nil && (*j.ConfirmWindowHours < 1 || *j.ConfirmWindowHours > 24*90) {
		bad("jurisdiction.confirm_window_hours %d must be from 1 to 2160 (90 days)", *j.ConfirmWindowHours)
	}
	if j.EscalationHours != nil && (*j.EscalationHours < 1 || *j.EscalationHours > 24*30) {
		bad("jurisdiction.escalation_hours %d must be from 1 to 720", *j.EscalationHours)
	}
	if len(j.Boundary) > 0 {
		if _, err := ParseArea(string(j.Boundary)); err != nil {
			bad("jurisdiction.boundary: %v", err)
		}
	} else if len(cfg.areas) == 0 {
		bad("jurisdiction has neither a boundary nor areas: no report could ever be placed in it")
	}
	depts := map[string]bool{}
	for i, d := range cfg.Departments {
		if d.Code == "" || d.Name == "" {
			bad("departments[%d]: code and name are required", i)
		}
		if depts[d.Code] {
			bad("departments[%d]: code %q appears twice", i, d.Code)
		}
		depts[d.Code] = true
	}
	if !depts[cfg.TriageDepartment] {
		bad("triage_department %q is not one of the departments", cfg.TriageDepartment)
	}
	cats := map[string]bool{}
	for i, c := range cfg.Categories {
		where := fmt.Sprintf("categories[%d] (%s)", i, c.Code)
		if c.Code == "" || c.Name == "" {
			bad("%s: code and name are required", where)
		}
		if cats[c.Code] {
			bad("%s: code appears twice", where)
		}
		cats[c.Code] = true
		if c.Department != "" && !depts[c.Department] {
			bad("%s: department %q is not one of the departments", where, c.Department)
		}
		if c.SLAHours < 0 {
			bad("%s: sla_hours %d is negative", where, c.SLAHours)
		}
		if c.DuplicateRadiusM < 0 || c.DuplicateRadiusM > 2000 || c.DuplicateWindowHours < 0 || c.DuplicateWindowHours > 24*365 {
			bad("%s: duplicate_radius_m must be 0 to 2000 and duplicate_window_hours 0 to 8760", where)
		}
		if c.AfterPhoto != "" && c.AfterPhoto != "required" && c.AfterPhoto != "optional" {
			bad("%s: after_photo %q must be required or optional", where, c.AfterPhoto)
		}
		seen := map[string]bool{}
		for k, a := range c.Attributes {
			if a.Code == "" || seen[a.Code] {
				bad("%s: attributes[%d]: code missing or repeated", where, k)
			}
			seen[a.Code] = true
			if !datatypes[a.Datatype] {
				bad("%s: attributes[%d] (%s): datatype %q is not one of string, number, datetime, text, singlevaluelist, multivaluelist", where, k, a.Code, a.Datatype)
			}
			if strings.HasSuffix(a.Datatype, "list") && len(a.Values) == 0 {
				bad("%s: attributes[%d] (%s): a list needs values", where, k, a.Code)
			}
		}
	}
	areas := map[string]bool{}
	for _, a := range cfg.areas {
		if areas[a.Code] {
			bad("areas: code %q appears twice", a.Code)
		}
		areas[a.Code] = true
	}
	for i, r := range cfg.Routing {
		if !cats[r.Category] {
			bad("routing[%d]: category %q is not one of the categories", i, r.Category)
		}
		if !areas[r.Area] {
			bad("routing[%d]: area %q is not one of the areas", i, r.Area)
		}
		if !depts[r.Department] {
			bad("routing[%d]: department %q is not one of the departments", i, r.Department)
		}
	}
	emails := map[string]bool{}
	for i, s := range cfg.Staff {
		where := fmt.Sprintf("staff[%d] (%s)", i, s.Email)
		email := strings.ToLower(strings.TrimSpace(s.Email))
		if !strings.Contains(email, "@") || emails[email] {
			bad("%s: email missing, malformed or repeated", where)
		}
		emails[email] = true
		switch s.Role {
		case RoleHandler:
			if !depts[s.Department] {
				bad("%s: a handler needs a department of this city, got %q", where, s.Department)
			}
		case RoleSupervisor, RoleAdmin:
			if s.Department != "" && !depts[s.Department] {
				bad("%s: department %q is not one of the departments", where, s.Department)
			}
		default:
			bad("%s: role %q must be handler, supervisor or admin", where, s.Role)
		}
	}
	for i, k := range cfg.Open311APIKeys {
		if len(k.Key) < 8 || k.Name == "" {
			bad("open311_api_keys[%d]: a key of at least 8 characters and a name are required", i)
		}
	}
	errs = append(errs, cfg.Retention.check()...)
	return errs
}

// digest identifies a configuration's content, so applying the same file again is known to
// change nothing without touching a row.
func (cfg *CityConfig) digest() string {
	h := sha256.New()
	b, _ := json.Marshal(cfg)
	h.Write(b)
	for _, a := range cfg.areas {
		fmt.Fprintf(h, "\x00%s\x00%s\x00%s", a.Code, a.Name, a.Geometry)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ApplyResult says what applying a configuration did.
type ApplyResult struct {
	Jurisdiction string
	Unchanged    bool
	Departments  int
	Categories   int
	Areas        int
	Rules        int
	StaffCreated int
}

// ApplyCityConfig makes the database match the configuration, all or nothing, in one
// transaction. Departments, categories, areas and staff are matched by code or email and
// updated in place, so their ids (and the cases that point at them) stay; routing rules and
// the configuration's API keys are replaced (keys made through the admin API stay); a category no longer in the file is deactivated, not deleted, since
// cases refer to it. Staff passwords are set only when the account is created. Applying the
// same file again changes nothing.
func (db *DB) ApplyCityConfig(ctx context.Context, cfg *CityConfig, now time.Time) (*ApplyResult, error) {
	now = now.UTC()
	digest := cfg.digest()
	res := &ApplyResult{Jurisdiction: cfg.Jurisdiction.ID}
	err := db.InTx(ctx, func(tx *DB) error {
		j, err := tx.Jurisdiction(ctx, cfg.Jurisdiction.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			j = &Jurisdiction{ID: cfg.Jurisdiction.ID, CreatedAt: now}
		case err != nil:
			return err
		case j.ConfigHash == digest:
			res.Unchanged = true
			return nil
		}
		j.Name, j.Timezone, j.ConfigHash, j.UpdatedAt = cfg.Jurisdiction.Name, cfg.Jurisdiction.Timezone, digest, now
		j.Calendar, j.ConfirmWindowHours, j.EscalationHours = "{}", 168, 24
		if cfg.Jurisdiction.Calendar != nil {
			b, _ := json.Marshal(cfg.Jurisdiction.Calendar)
			j.Calendar = string(b)
		}
		if cfg.Jurisdiction.ConfirmWindowHours != nil {
			j.ConfirmWindowHours = *cfg.Jurisdiction.ConfirmWindowHours
		}
		if cfg.Jurisdiction.EscalationHours != nil {
			j.EscalationHours = *cfg.Jurisdiction.EscalationHours
		}
		j.RetentionOriginalsDays, j.RetentionClosedDays = cfg.Retention.days()
		j.Boundary = nil
		if len(cfg.Jurisdiction.Boundary) > 0 {
			s := string(cfg.Jurisdiction.Boundary)
			j.Boundary = &s
		}
		if err := tx.q(ctx).Save(j).Error; err != nil {
			return err
		}
		deptIDs := map[string]string{}
		for _, d := range cfg.Departments {
			row := Department{JurisdictionID: j.ID, Code: d.Code}
			if err := tx.upsert(ctx, &row, "jurisdiction_id = ? AND code = ?", []any{j.ID, d.Code}, map[string]any{"name": d.Name}, func() {
				row.ID, row.Name, row.CreatedAt, row.UpdatedAt = NewID(), d.Name, now, now
			}, now); err != nil {
				return err
			}
			deptIDs[d.Code] = row.ID
			res.Departments++
		}
		triage := deptIDs[cfg.TriageDepartment]
		if err := tx.q(ctx).Model(j).Update("triage_department_id", triage).Error; err != nil {
			return err
		}
		catIDs := map[string]string{}
		if err := tx.q(ctx).Model(&Category{}).Where("jurisdiction_id = ?", j.ID).Update("active", false).Error; err != nil {
			return err
		}
		for _, c := range cfg.Categories {
			attrs, _ := json.Marshal(c.Attributes)
			if c.Attributes == nil {
				attrs = []byte("[]")
			}
			var dept *string
			if id, ok := deptIDs[c.Department]; ok {
				dept = &id
			}
			after := c.AfterPhoto
			if after == "" {
				after = "optional"
			}
			radius, window := cmp.Or(c.DuplicateRadiusM, 50), cmp.Or(c.DuplicateWindowHours, 720)
			fields := map[string]any{"name": c.Name, "group_name": c.Group, "description": c.Description,
				"department_id": dept, "sla_hours": c.SLAHours, "attributes": string(attrs), "after_photo": after,
				"sensitive": c.Sensitive, "duplicate_radius_m": radius, "duplicate_window_hours": window, "active": true}
			row := Category{JurisdictionID: j.ID, Code: c.Code}
			if err := tx.upsert(ctx, &row, "jurisdiction_id = ? AND code = ?", []any{j.ID, c.Code}, fields, func() {
				row = Category{ID: NewID(), JurisdictionID: j.ID, Code: c.Code, Name: c.Name, GroupName: c.Group,
					Description: c.Description, DepartmentID: dept, SLAHours: c.SLAHours, Attributes: string(attrs),
					AfterPhoto: after, Sensitive: c.Sensitive, DuplicateRadiusM: radius, DuplicateWindowHours: window,
					Active: true, CreatedAt: now, UpdatedAt: now}
			}, now); err != nil {
				return err
			}
			catIDs[c.Code] = row.ID
			res.Categories++
		}
		areaIDs := map[string]string{}
		for _, a := range cfg.areas {
			row := Area{JurisdictionID: j.ID, Code: a.Code}
			if err := tx.upsert(ctx, &row, "jurisdiction_id = ? AND code = ?", []any{j.ID, a.Code},
				map[string]any{"name": a.Name, "geometry": a.Geometry}, func() {
					row = Area{ID: NewID(), JurisdictionID: j.ID, Code: a.Code, Name: a.Name, Geometry: a.Geometry, CreatedAt: now, UpdatedAt: now}
				}, now); err != nil {
				return err
			}
			areaIDs[a.Code] = row.ID
			res.Areas++
		}
		if err := tx.q(ctx).Where("jurisdiction_id = ?", j.ID).Delete(&RoutingRule{}).Error; err != nil {
			return err
		}
		for _, r := range cfg.Routing {
			rule := RoutingRule{ID: NewID(), JurisdictionID: j.ID, CategoryID: catIDs[r.Category],
				AreaID: areaIDs[r.Area], DepartmentID: deptIDs[r.Department], CreatedAt: now}
			if err := tx.q(ctx).Create(&rule).Error; err != nil {
				return err
			}
			res.Rules++
		}
		for _, s := range cfg.Staff {
			created, err := tx.upsertStaff(ctx, j.ID, s, deptIDs, now)
			if err != nil {
				return err
			}
			if created {
				res.StaffCreated++
			}
		}
		if err := tx.q(ctx).Where("jurisdiction_id = ? AND source = ?", j.ID, APIKeyFromConfig).Delete(&APIKey{}).Error; err != nil {
			return err
		}
		for _, k := range cfg.Open311APIKeys {
			row := APIKey{ID: NewID(), JurisdictionID: j.ID, KeySHA256: HashAPIKey(k.Key), Name: k.Name, CreatedAt: now}
			if err := tx.q(ctx).Create(&row).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// upsert finds the row matching where; if there is one it updates fields on it, otherwise
// it calls fill to complete the new row and inserts it. row ends up holding the stored row.
func (db *DB) upsert(ctx context.Context, row any, where string, args []any, fields map[string]any, fill func(), now time.Time) error {
	err := db.q(ctx).Where(where, args...).Take(row).Error
	switch err = translate(err); {
	case errors.Is(err, ErrNotFound):
		fill()
		return db.q(ctx).Create(row).Error
	case err != nil:
		return err
	}
	fields["updated_at"] = now
	return db.q(ctx).Model(row).Updates(fields).Error
}

func (db *DB) upsertStaff(ctx context.Context, jurisdictionID string, s StaffConfig, deptIDs map[string]string, now time.Time) (bool, error) {
	email := strings.ToLower(strings.TrimSpace(s.Email))
	var dept *string
	if id, ok := deptIDs[s.Department]; ok {
		dept = &id
	}
	var u User
	err := translate(db.q(ctx).Where("email = ?", email).Take(&u).Error)
	switch {
	case errors.Is(err, ErrNotFound):
		hash, err := HashPassword(s.Password)
		if err != nil {
			return false, err
		}
		u = User{ID: NewID(), Role: s.Role, JurisdictionID: &jurisdictionID, DepartmentID: dept, Email: &email,
			Name: s.Name, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
		return true, db.q(ctx).Create(&u).Error
	case err != nil:
		return false, err
	}
	if u.JurisdictionID == nil || *u.JurisdictionID != jurisdictionID {
		return false, Problemf(ErrConflict, "staff-in-other-city", "staff %s already works for another city", email)
	}
	return false, db.q(ctx).Model(&u).Updates(map[string]any{"role": s.Role, "department_id": dept, "name": s.Name, "updated_at": now}).Error
}

// HashPassword hashes a staff password with bcrypt. An empty password gives an account that
// cannot log in until one is set.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", nil
	}
	b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(b), err
}

// CheckPassword reports whether pw is the user's password.
func CheckPassword(u *User, pw string) bool {
	return u.PasswordHash != "" && bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pw)) == nil
}

// HashAPIKey is how API keys are stored and looked up: by digest, never in clear.
func HashAPIKey(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}
