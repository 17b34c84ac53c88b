package models

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// ExportCityConfig reads a city's whole configuration back from the database, in the form
// ParseCityConfig reads, so that applying it changes nothing. What the database does not
// keep is not in it: staff passwords (only digests are kept; an account exported into a new
// database gets its password through the admin API or `cityeyes user add`), disabled
// accounts, retired categories and areas, and the Open311 keys made through the admin API
// (those live beside the configuration). The configuration's own keys are given by their
// SHA-256 digest.
func (db *DB) ExportCityConfig(ctx context.Context, jurisdictionID string) (*CityConfig, error) {
	j, err := db.Jurisdiction(ctx, jurisdictionID)
	if err != nil {
		return nil, err
	}
	cfg := &CityConfig{}
	cj := &cfg.Jurisdiction
	cj.ID, cj.Name, cj.Timezone = j.ID, j.Name, j.Timezone
	if j.Boundary != nil && *j.Boundary != "" {
		cj.Boundary = json.RawMessage(*j.Boundary)
	}
	if j.Calendar != "" && j.Calendar != "{}" {
		var cal Calendar
		if err := json.Unmarshal([]byte(j.Calendar), &cal); err != nil {
			return nil, err
		}
		cj.Calendar = &cal
	}
	confirm, escalation := j.ConfirmWindowHours, j.EscalationHours
	cj.ConfirmWindowHours, cj.EscalationHours = &confirm, &escalation
	originals, closed := j.RetentionOriginalsDays, j.RetentionClosedDays
	cfg.Retention = &RetentionConfig{OriginalsDays: &originals, ClosedPersonalDays: &closed}

	depts, err := db.Departments(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	deptCode := map[string]string{}
	for _, d := range depts {
		deptCode[d.ID] = d.Code
		cfg.Departments = append(cfg.Departments, DepartmentConfig{Code: d.Code, Name: d.Name})
	}
	if j.TriageDepartmentID != nil {
		cfg.TriageDepartment = deptCode[*j.TriageDepartmentID]
	}

	var cats []Category
	if err := db.q(ctx).Where("jurisdiction_id = ? AND active = ?", j.ID, true).Order("code").Find(&cats).Error; err != nil {
		return nil, translate(err)
	}
	catCode := map[string]string{}
	for _, c := range cats {
		catCode[c.ID] = c.Code
		cc := CategoryConfig{Code: c.Code, Name: c.Name, Group: c.GroupName, Description: c.Description,
			SLAHours: c.SLAHours, AfterPhoto: c.AfterPhoto, Sensitive: c.Sensitive,
			DuplicateRadiusM: c.DuplicateRadiusM, DuplicateWindowHours: c.DuplicateWindowHours}
		if c.DepartmentID != nil {
			cc.Department = deptCode[*c.DepartmentID]
		}
		if c.Attributes != "" {
			if err := json.Unmarshal([]byte(c.Attributes), &cc.Attributes); err != nil {
				return nil, err
			}
			if len(cc.Attributes) == 0 {
				cc.Attributes = nil
			}
		}
		cfg.Categories = append(cfg.Categories, cc)
	}

	var areas []Area
	if err := db.q(ctx).Where("jurisdiction_id = ? AND active = ?", j.ID, true).Order("code").Find(&areas).Error; err != nil {
		return nil, translate(err)
	}
	areaCode := map[string]string{}
	type feature struct {
		Type       string            `json:"type"`
		ID         string            `json:"id"`
		Properties map[string]string `json:"properties"`
		Geometry   json.RawMessage   `json:"geometry"`
	}
	fc := struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}{Type: "FeatureCollection", Features: []feature{}}
	for _, a := range areas {
		areaCode[a.ID] = a.Code
		fc.Features = append(fc.Features, feature{Type: "Feature", ID: a.Code, Properties: map[string]string{"name": a.Name}, Geometry: json.RawMessage(a.Geometry)})
		cfg.areas = append(cfg.areas, AreaConfig{Code: a.Code, Name: a.Name, Geometry: a.Geometry})
	}
	if len(areas) > 0 {
		if cfg.Areas, err = json.Marshal(fc); err != nil {
			return nil, err
		}
	}

	var rules []RoutingRule
	if err := db.q(ctx).Where("jurisdiction_id = ?", j.ID).Find(&rules).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range rules {
		cfg.Routing = append(cfg.Routing, RoutingConfig{Category: catCode[r.CategoryID], Area: areaCode[r.AreaID], Department: deptCode[r.DepartmentID]})
	}
	slices.SortFunc(cfg.Routing, func(a, b RoutingConfig) int {
		return cmp.Or(strings.Compare(a.Category, b.Category), strings.Compare(a.Area, b.Area))
	})

	staff, err := db.ListStaff(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	for _, u := range staff {
		if u.Disabled || u.Email == nil {
			continue
		}
		s := StaffConfig{Email: *u.Email, Name: u.Name, Role: u.Role}
		if u.DepartmentID != nil {
			s.Department = deptCode[*u.DepartmentID]
		}
		cfg.Staff = append(cfg.Staff, s)
	}

	var keys []Open311Key
	if err := db.q(ctx).Where("jurisdiction_id = ? AND source = ?", j.ID, APIKeyFromConfig).Order("name, key_sha256").Find(&keys).Error; err != nil {
		return nil, translate(err)
	}
	for _, k := range keys {
		cfg.Open311APIKeys = append(cfg.Open311APIKeys, APIKeyConfig{Name: k.Name, KeySHA256: k.KeySHA256})
	}
	return cfg, nil
}

func (k APIKeyConfig) sha256() string {
	if k.KeySHA256 != "" {
		return strings.ToLower(k.KeySHA256)
	}
	return HashAPIKey(k.Key)
}

// canonical is the configuration's content in one spelling: defaults filled in, lists in a
// fixed order, keys as digests, passwords left out (they count only when an account is made,
// which a new email shows already). A file and its export have the same canonical form.
func (cfg *CityConfig) canonical() []byte {
	type area struct{ Code, Name, Geometry string }
	type key struct{ Name, SHA256 string }
	var c struct {
		ID, Name, Timezone, Boundary, Calendar string
		ConfirmWindowHours, EscalationHours    int
		RetentionOriginals, RetentionClosed    int
		Areas                                  []area
		Departments                            []DepartmentConfig
		Categories                             []CategoryConfig
		Routing                                []RoutingConfig
		Triage                                 string
		Staff                                  []StaffConfig
		Keys                                   []key
	}
	j := cfg.Jurisdiction
	c.ID, c.Name, c.Timezone = j.ID, j.Name, j.Timezone
	if b := bytes.TrimSpace(j.Boundary); len(b) > 0 && string(b) != "null" {
		c.Boundary = string(b)
	}
	if j.Calendar != nil {
		b, _ := json.Marshal(j.Calendar)
		if string(b) != "{}" {
			c.Calendar = string(b)
		}
	}
	c.ConfirmWindowHours, c.EscalationHours = 168, 24
	if j.ConfirmWindowHours != nil {
		c.ConfirmWindowHours = *j.ConfirmWindowHours
	}
	if j.EscalationHours != nil {
		c.EscalationHours = *j.EscalationHours
	}
	c.RetentionOriginals, c.RetentionClosed = cfg.Retention.days()
	for _, a := range cfg.areas {
		c.Areas = append(c.Areas, area(a))
	}
	slices.SortFunc(c.Areas, func(a, b area) int { return strings.Compare(a.Code, b.Code) })
	c.Departments = slices.Clone(cfg.Departments)
	slices.SortFunc(c.Departments, func(a, b DepartmentConfig) int { return strings.Compare(a.Code, b.Code) })
	for _, cat := range cfg.Categories {
		cat.AfterPhoto = cmp.Or(cat.AfterPhoto, "optional")
		cat.DuplicateRadiusM = cmp.Or(cat.DuplicateRadiusM, 50)
		cat.DuplicateWindowHours = cmp.Or(cat.DuplicateWindowHours, 720)
		if len(cat.Attributes) == 0 {
			cat.Attributes = nil
		}
		c.Categories = append(c.Categories, cat)
	}
	slices.SortFunc(c.Categories, func(a, b CategoryConfig) int { return strings.Compare(a.Code, b.Code) })
	c.Routing = slices.Clone(cfg.Routing)
	slices.SortFunc(c.Routing, func(a, b RoutingConfig) int {
		return cmp.Or(strings.Compare(a.Category, b.Category), strings.Compare(a.Area, b.Area))
	})
	c.Triage = cfg.TriageDepartment
	for _, s := range cfg.Staff {
		s.Email, s.Password = strings.ToLower(strings.TrimSpace(s.Email)), ""
		c.Staff = append(c.Staff, s)
	}
	slices.SortFunc(c.Staff, func(a, b StaffConfig) int { return strings.Compare(a.Email, b.Email) })
	for _, k := range cfg.Open311APIKeys {
		c.Keys = append(c.Keys, key{k.Name, k.sha256()})
	}
	slices.SortFunc(c.Keys, func(a, b key) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.SHA256, b.SHA256))
	})
	b, _ := json.Marshal(c)
	return b
}

// digest identifies a configuration's content, so applying the same file again is known to
// change nothing without touching a row.
func (cfg *CityConfig) digest() string { return digestOf(cfg.canonical()) }

func digestOf(canonical []byte) string {
	s := sha256.Sum256(canonical)
	return hex.EncodeToString(s[:])
}

// MarshalCityConfigYAML writes a configuration as the YAML file ParseCityConfig reads: keys
// in the order of CONTRACT.md, geometries in flow style (one polygon is not a hundred lines).
func MarshalCityConfigYAML(cfg *CityConfig) ([]byte, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// JSON is YAML: read as a node tree it keeps the order of the fields, and each node's
	// style can then be chosen.
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	restyle(&doc, false)
	var buf bytes.Buffer
	buf.WriteString("# City Eyes city configuration, written by `cityeyes config export`.\n")
	enc := yamlv3.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// restyle makes a node tree read from JSON look like hand-written YAML: block style, plain
// scalars where they read back the same, and flow style for geometries.
func restyle(n *yamlv3.Node, flow bool) {
	switch n.Kind {
	case yamlv3.ScalarNode:
		if n.Tag == "!!str" {
			// The encoder quotes a string again where plain text would read as something
			// else (a number, a boolean).
			n.Style = 0
		}
		return
	case yamlv3.MappingNode, yamlv3.SequenceNode:
		if flow {
			n.Style = yamlv3.FlowStyle
		} else {
			n.Style = 0
		}
	}
	for i, c := range n.Content {
		f := flow
		if n.Kind == yamlv3.MappingNode && i%2 == 1 {
			switch n.Content[i-1].Value {
			case "geometry", "boundary", "values", "days":
				f = true
			}
		}
		restyle(c, f)
	}
}
