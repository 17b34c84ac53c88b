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
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	sfgeom "github.com/peterstace/simplefeatures/geom"
	yamlv3 "go.yaml.in/yaml/v3"
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
	Department  string      `json:"department,omitempty"`
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

// APIKeyConfig is an Open311 client's key: the key itself, or its SHA-256 digest in hex (as
// `config export` writes it, since only digests are kept).
type APIKeyConfig struct {
	Key       string `json:"key,omitempty"`
	KeySHA256 string `json:"key_sha256,omitempty"`
	Name      string `json:"name"`
}

// AreaConfig is one area read from the areas FeatureCollection.
type AreaConfig struct {
	Code     string
	Name     string
	Geometry string
}

var datatypes = map[string]bool{"string": true, "number": true, "datetime": true, "text": true, "singlevaluelist": true, "multivaluelist": true}

// ParseCityConfig reads a city configuration (YAML or JSON) and checks it whole. readFile
// reads files the configuration names (the areas), relative to the configuration's own
// directory. Every problem found is reported, each naming the line it is on and the entry
// (or GeoJSON feature) it is about; nothing is mended quietly.
func ParseCityConfig(data []byte, readFile func(name string) ([]byte, error)) (*CityConfig, error) {
	var cfg CityConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, Problemf(ErrInvalid, "bad-city-config", "city configuration: %v", err)
	}
	issues, areasFile, areasData, err := cfg.validate(readFile)
	if err != nil {
		return nil, err
	}
	if len(issues) > 0 {
		return nil, issuesProblem(issues, &positions{data: data, areasFile: areasFile, areasData: areasData})
	}
	return &cfg, nil
}

// Validate checks a configuration built in code (the admin API's changes) exactly as
// ParseCityConfig checks a file; its areas must be an inline FeatureCollection.
func (cfg *CityConfig) Validate() error {
	issues, _, _, err := cfg.validate(nil)
	if err != nil {
		return err
	}
	if len(issues) > 0 {
		return issuesProblem(issues, nil)
	}
	return nil
}

// issue is one problem of a configuration: where it is (a path of keys and indexes into the
// document, for its line) and what is wrong, naming the entry.
type issue struct {
	inAreasFile bool
	path        []any
	msg         string
}

func issuesProblem(issues []issue, pos *positions) error {
	msgs := make([]string, len(issues))
	for i, is := range issues {
		msgs[i] = pos.prefix(is) + is.msg
	}
	return Problemf(ErrInvalid, "bad-city-config", "city configuration has %d problem(s): %s", len(msgs), strings.Join(msgs, "; "))
}

// positions finds the line of an entry in the text it came from. The text is parsed again
// (yaml.v3 keeps each node's line; JSON is YAML too) only when there is something to report.
type positions struct {
	data                 []byte
	areasFile            string
	areasData            []byte
	root, areas          *yamlv3.Node
	parsedRoot, parsedAr bool
}

func (p *positions) prefix(is issue) string {
	if p == nil {
		return ""
	}
	if is.inAreasFile {
		if !p.parsedAr {
			p.areas, p.parsedAr = parseNode(p.areasData), true
		}
		if l := nodeLine(p.areas, is.path); l > 0 {
			return fmt.Sprintf("%s line %d: ", p.areasFile, l)
		}
		return ""
	}
	if !p.parsedRoot {
		p.root, p.parsedRoot = parseNode(p.data), true
	}
	if l := nodeLine(p.root, is.path); l > 0 {
		return fmt.Sprintf("line %d: ", l)
	}
	return ""
}

func parseNode(data []byte) *yamlv3.Node {
	var n yamlv3.Node
	if err := yamlv3.Unmarshal(data, &n); err != nil {
		return nil
	}
	return &n
}

// nodeLine is the line of the node at path (map keys and sequence indexes), or of the
// deepest node of the path that exists (a missing key is reported at its entry).
func nodeLine(n *yamlv3.Node, path []any) int {
	if n == nil {
		return 0
	}
	if n.Kind == yamlv3.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yamlv3.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yamlv3.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yamlv3.SequenceNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

// validate parses the areas and checks everything; it returns the problems found, and the
// areas file (name and text) when the areas came from one.
func (cfg *CityConfig) validate(readFile func(name string) ([]byte, error)) ([]issue, string, []byte, error) {
	cfg.areas = nil
	raw := bytes.TrimSpace(cfg.Areas)
	areasFile := ""
	if len(raw) > 0 && raw[0] == '"' {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return nil, "", nil, err
		}
		if readFile == nil {
			return nil, "", nil, Problemf(ErrInvalid, "bad-city-config", "areas: give the FeatureCollection itself here, not the name of a file")
		}
		b, err := readFile(path.Clean(name))
		if err != nil {
			return nil, "", nil, Problemf(ErrInvalid, "bad-city-config", "areas: cannot read %q: %v", name, err)
		}
		raw, areasFile = b, path.Clean(name)
	}
	var issues []issue
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		fc, err := geojson.UnmarshalFeatureCollection(raw)
		if err != nil {
			issues = append(issues, issue{inAreasFile: areasFile != "", path: []any{"areas"}, msg: fmt.Sprintf("areas: not a GeoJSON FeatureCollection: %v", err)})
		} else {
			for i, f := range fc.Features {
				at := []any{"areas", "features", i}
				if areasFile != "" {
					at = []any{"features", i}
				}
				code := fmt.Sprint(f.ID)
				if c, ok := f.Properties["code"].(string); ok && c != "" {
					code = c
				}
				if f.ID == nil && code == "<nil>" {
					issues = append(issues, issue{areasFile != "", at, fmt.Sprintf("areas: feature %d has neither an id nor properties.code", i)})
					continue
				}
				name, _ := f.Properties["name"].(string)
				if name == "" {
					name = code
				}
				if f.Geometry == nil {
					issues = append(issues, issue{areasFile != "", at, fmt.Sprintf("areas: feature %d (%s) has no geometry", i, code)})
					continue
				}
				g, err := json.Marshal(geojson.NewGeometry(f.Geometry))
				if err == nil {
					_, err = CheckArea(string(g))
				}
				if err != nil {
					issues = append(issues, issue{areasFile != "", append(at, "geometry"), fmt.Sprintf("areas: feature %d (%s): %v", i, code, err)})
					continue
				}
				cfg.areas = append(cfg.areas, AreaConfig{Code: code, Name: name, Geometry: string(g)})
			}
		}
	}
	issues = append(issues, cfg.check()...)
	return issues, areasFile, raw, nil
}

// CheckArea reads a GeoJSON Polygon or MultiPolygon and checks that it is a valid one: rings
// closed (an open ring is refused, not closed for the sender: which closing they meant is
// theirs to say), none crossing or touching itself or another, holes inside their shell.
func CheckArea(s string) (orb.Geometry, error) {
	g, err := ParseArea(s)
	if err != nil {
		return nil, err
	}
	if _, err := sfgeom.UnmarshalGeoJSON([]byte(s)); err != nil {
		if strings.Contains(err.Error(), "not simple") {
			return nil, fmt.Errorf("self-intersecting: a ring crosses or touches itself (%v)", err)
		}
		return nil, fmt.Errorf("not a valid polygon: %v", err)
	}
	return g, nil
}

// AreaCount is the number of areas the configuration defines.
func (cfg *CityConfig) AreaCount() int { return len(cfg.areas) }

// check finds every inconsistency of a configuration: missing names, duplicates, and
// references to departments, categories and areas that it does not define.
func (cfg *CityConfig) check() []issue {
	var issues []issue
	bad := func(at []any, format string, args ...any) {
		issues = append(issues, issue{path: at, msg: fmt.Sprintf(format, args...)})
	}
	j := &cfg.Jurisdiction
	jat := func(k string) []any { return []any{"jurisdiction", k} }
	if j.ID == "" || strings.ContainsAny(j.ID, " /") {
		bad(jat("id"), "jurisdiction.id %q: must be a short identifier without spaces or slashes", j.ID)
	}
	if j.Name == "" {
		bad(jat("name"), "jurisdiction.name is missing")
	}
	if _, err := time.LoadLocation(j.Timezone); err != nil || j.Timezone == "" {
		bad(jat("timezone"), "jurisdiction.timezone %q is not an IANA time zone such as America/New_York", j.Timezone)
	}
	if _, err := time.LoadLocation(j.Timezone); j.Calendar != nil && err == nil && j.Timezone != "" {
		cal := *j.Calendar
		cal.Timezone = j.Timezone
		if _, err := ParseCalendar(cal); err != nil {
			bad(jat("calendar"), "jurisdiction.calendar: %v", err)
		}
	}
	if j.ConfirmWindowHours != nil && (*j.ConfirmWindowHours < 1 || *j.ConfirmWindowHours > 24*90) {
		bad(jat("confirm_window_hours"), "jurisdiction.confirm_window_hours %d must be from 1 to 2160 (90 days)", *j.ConfirmWindowHours)
	}
	if j.EscalationHours != nil && (*j.EscalationHours < 1 || *j.EscalationHours > 24*30) {
		bad(jat("escalation_hours"), "jurisdiction.escalation_hours %d must be from 1 to 720", *j.EscalationHours)
	}
	if b := bytes.TrimSpace(j.Boundary); len(b) > 0 && !bytes.Equal(b, []byte("null")) {
		if g, err := CheckArea(string(b)); err != nil {
			bad(jat("boundary"), "jurisdiction.boundary: %v", err)
		} else {
			// One spelling of the same shape, so that an exported configuration reads
			// the same as the file it came from.
			j.Boundary, _ = json.Marshal(geojson.NewGeometry(g))
		}
	} else if j.Boundary = nil; len(cfg.areas) == 0 {
		bad([]any{"areas"}, "jurisdiction has neither a boundary nor areas: no report could ever be placed in it")
	}
	depts := map[string]bool{}
	for i, d := range cfg.Departments {
		at := []any{"departments", i}
		if d.Code == "" || d.Name == "" {
			bad(at, "departments[%d] (%s): code and name are required", i, d.Code)
		}
		if depts[d.Code] {
			bad(at, "departments[%d]: code %q appears twice", i, d.Code)
		}
		depts[d.Code] = true
	}
	if !depts[cfg.TriageDepartment] {
		bad([]any{"triage_department"}, "triage_department %q is not one of the departments", cfg.TriageDepartment)
	}
	cats := map[string]bool{}
	for i, c := range cfg.Categories {
		at := func(k ...any) []any { return append([]any{"categories", i}, k...) }
		where := fmt.Sprintf("categories[%d] (%s)", i, c.Code)
		if c.Code == "" || c.Name == "" {
			bad(at(), "%s: code and name are required", where)
		}
		if cats[c.Code] {
			bad(at("code"), "%s: code appears twice", where)
		}
		cats[c.Code] = true
		if c.Department != "" && !depts[c.Department] {
			bad(at("department"), "%s: department %q is not one of the departments", where, c.Department)
		}
		if c.SLAHours < 0 {
			bad(at("sla_hours"), "%s: sla_hours %d is negative", where, c.SLAHours)
		}
		if c.DuplicateRadiusM < 0 || c.DuplicateRadiusM > 2000 || c.DuplicateWindowHours < 0 || c.DuplicateWindowHours > 24*365 {
			bad(at(), "%s: duplicate_radius_m must be 0 to 2000 and duplicate_window_hours 0 to 8760", where)
		}
		if c.AfterPhoto != "" && c.AfterPhoto != "required" && c.AfterPhoto != "optional" {
			bad(at("after_photo"), "%s: after_photo %q must be required or optional", where, c.AfterPhoto)
		}
		seen := map[string]bool{}
		for k, a := range c.Attributes {
			if a.Code == "" || seen[a.Code] {
				bad(at("attributes", k), "%s: attributes[%d]: code missing or repeated", where, k)
			}
			seen[a.Code] = true
			if !datatypes[a.Datatype] {
				bad(at("attributes", k, "datatype"), "%s: attributes[%d] (%s): datatype %q is not one of string, number, datetime, text, singlevaluelist, multivaluelist", where, k, a.Code, a.Datatype)
			}
			if strings.HasSuffix(a.Datatype, "list") && len(a.Values) == 0 {
				bad(at("attributes", k), "%s: attributes[%d] (%s): a list needs values", where, k, a.Code)
			}
		}
	}
	areas := map[string]bool{}
	for _, a := range cfg.areas {
		if areas[a.Code] {
			bad([]any{"areas"}, "areas: code %q appears twice", a.Code)
		}
		areas[a.Code] = true
	}
	rules := map[[2]string]int{}
	for i, r := range cfg.Routing {
		at := func(k string) []any { return []any{"routing", i, k} }
		where := fmt.Sprintf("routing[%d] (%s in %s)", i, r.Category, r.Area)
		if !cats[r.Category] {
			bad(at("category"), "%s: category %q is not one of the categories", where, r.Category)
		}
		if !areas[r.Area] {
			bad(at("area"), "%s: area %q is not one of the areas", where, r.Area)
		}
		if !depts[r.Department] {
			bad(at("department"), "%s: department %q is not one of the departments", where, r.Department)
		}
		if k, dup := rules[[2]string{r.Category, r.Area}]; dup {
			bad(at("area"), "%s: routing[%d] already routes %s in %s; one rule per category and area", where, k, r.Category, r.Area)
		} else {
			rules[[2]string{r.Category, r.Area}] = i
		}
	}
	emails := map[string]bool{}
	for i, s := range cfg.Staff {
		at := func(k ...any) []any { return append([]any{"staff", i}, k...) }
		where := fmt.Sprintf("staff[%d] (%s)", i, s.Email)
		email := strings.ToLower(strings.TrimSpace(s.Email))
		if !strings.Contains(email, "@") || emails[email] {
			bad(at("email"), "%s: email missing, malformed or repeated", where)
		}
		emails[email] = true
		switch s.Role {
		case RoleHandler:
			if s.Department == "" {
				bad(at("department"), "%s: a handler needs a department (one of this city's department codes)", where)
			} else if !depts[s.Department] {
				bad(at("department"), "%s: a handler needs a department of this city, got %q", where, s.Department)
			}
		case RoleSupervisor, RoleAdmin:
			if s.Department != "" && !depts[s.Department] {
				bad(at("department"), "%s: department %q is not one of the departments", where, s.Department)
			}
		default:
			bad(at("role"), "%s: role %q must be handler, supervisor or admin", where, s.Role)
		}
	}
	for i, k := range cfg.Open311APIKeys {
		at := []any{"open311_api_keys", i}
		switch {
		case k.Name == "":
			bad(at, "open311_api_keys[%d]: a name is required", i)
		case k.Key != "" && k.KeySHA256 != "":
			bad(at, "open311_api_keys[%d] (%s): give key or key_sha256, not both", i, k.Name)
		case k.KeySHA256 != "":
			if b, err := hex.DecodeString(k.KeySHA256); err != nil || len(b) != sha256.Size {
				bad(at, "open311_api_keys[%d] (%s): key_sha256 must be 64 hexadecimal digits", i, k.Name)
			}
		case len(k.Key) < 8:
			bad(at, "open311_api_keys[%d] (%s): a key of at least 8 characters is required", i, k.Name)
		}
	}
	for _, msg := range cfg.Retention.check() {
		bad([]any{"retention"}, "%s", msg)
	}
	return issues
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

// errUnchanged rolls back an apply whose writes turned out to change nothing.
var errUnchanged = errors.New("configuration unchanged")

// ApplyCityConfig makes the database match the configuration, all or nothing, in one
// transaction. Departments, categories, areas and staff are matched by code or email and
// updated in place, so their ids (and the cases that point at them) stay; routing rules and
// the configuration's API keys are replaced (keys made through the admin API stay); a
// category or area no longer in the configuration is retired (inactive), not deleted, since
// cases refer to it; departments and staff are never removed by it. Staff passwords are set
// only when the account is created. A city whose ground overlaps another's is refused.
// Applying a configuration that changes nothing reports Unchanged and writes nothing, so
// ConfigStamp moves only on real changes.
func (db *DB) ApplyCityConfig(ctx context.Context, cfg *CityConfig, now time.Time) (*ApplyResult, error) {
	var res *ApplyResult
	err := db.InTx(ctx, func(tx *DB) error {
		var err error
		res, err = tx.applyInTx(ctx, cfg, now)
		return err
	})
	if errors.Is(err, errUnchanged) {
		return &ApplyResult{Jurisdiction: cfg.Jurisdiction.ID, Unchanged: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// UpdateCityConfig changes one city's configuration the way the admin API does: it reads
// the configuration back from the database, lets change edit it, checks the result as a
// file is checked and applies it, all in one transaction. So the API and the file can never
// disagree: what the API allows is what a file could say, and `config export` shows it.
func (db *DB) UpdateCityConfig(ctx context.Context, jurisdictionID string, change func(cfg *CityConfig) error, now time.Time) (*ApplyResult, error) {
	var res *ApplyResult
	err := db.InTx(ctx, func(tx *DB) error {
		// Two administrators' changes queue here instead of one overwriting the other
		// (SQLite transactions take the write lock at BEGIN already).
		if tx.dialect == Postgres {
			if err := tx.q(ctx).Exec("SELECT id FROM jurisdictions WHERE id = ? FOR UPDATE", jurisdictionID).Error; err != nil {
				return err
			}
		}
		cfg, err := tx.ExportCityConfig(ctx, jurisdictionID)
		if err != nil {
			return err
		}
		if err := change(cfg); err != nil {
			return err
		}
		if cfg.Jurisdiction.ID != jurisdictionID {
			return Problemf(ErrInvalid, "bad-city-config", "jurisdiction.id cannot change (%q)", jurisdictionID)
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		res, err = tx.applyInTx(ctx, cfg, now)
		return err
	})
	if errors.Is(err, errUnchanged) {
		return &ApplyResult{Jurisdiction: jurisdictionID, Unchanged: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (tx *DB) applyInTx(ctx context.Context, cfg *CityConfig, now time.Time) (*ApplyResult, error) {
	now = now.UTC()
	digest := cfg.digest()
	res := &ApplyResult{Jurisdiction: cfg.Jurisdiction.ID}
	err := func() error {
		j, err := tx.Jurisdiction(ctx, cfg.Jurisdiction.ID)
		existed := err == nil
		switch {
		case errors.Is(err, ErrNotFound):
			j = &Jurisdiction{ID: cfg.Jurisdiction.ID, CreatedAt: now}
		case err != nil:
			return err
		case j.ConfigHash == digest:
			return errUnchanged
		}
		var before []byte
		if existed {
			old, err := tx.ExportCityConfig(ctx, j.ID)
			if err != nil {
				return err
			}
			before = old.canonical()
		}
		j.Name, j.Timezone, j.UpdatedAt = cfg.Jurisdiction.Name, cfg.Jurisdiction.Timezone, now
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
				map[string]any{"name": a.Name, "geometry": a.Geometry, "active": true}, func() {
					row = Area{ID: NewID(), JurisdictionID: j.ID, Code: a.Code, Name: a.Name, Geometry: a.Geometry, Active: true, CreatedAt: now, UpdatedAt: now}
				}, now); err != nil {
				return err
			}
			areaIDs[a.Code] = row.ID
			res.Areas++
		}
		retire := tx.q(ctx).Model(&Area{}).Where("jurisdiction_id = ? AND active = ?", j.ID, true)
		if len(areaIDs) > 0 {
			retire = retire.Where("id NOT IN ?", slices.Collect(maps.Values(areaIDs)))
		}
		if err := retire.Updates(map[string]any{"active": false, "updated_at": now}).Error; err != nil {
			return err
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
			row := APIKey{ID: NewID(), JurisdictionID: j.ID, KeySHA256: k.sha256(), Name: k.Name, CreatedAt: now}
			if err := tx.q(ctx).Create(&row).Error; err != nil {
				return err
			}
		}
		if err := tx.checkOverlaps(ctx, j.ID); err != nil {
			return err
		}
		after, err := tx.ExportCityConfig(ctx, j.ID)
		if err != nil {
			return err
		}
		canon := after.canonical()
		if existed && bytes.Equal(canon, before) {
			return errUnchanged
		}
		// The digest of what is now stored: applying the same text again (or its export)
		// is then known to change nothing without a write.
		return tx.q(ctx).Model(j).Update("config_hash", digestOf(canon)).Error
	}()
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
