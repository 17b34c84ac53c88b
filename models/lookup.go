package models

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Jurisdiction returns one city.
func (db *DB) Jurisdiction(ctx context.Context, id string) (*Jurisdiction, error) {
	var j Jurisdiction
	if err := db.q(ctx).Where("id = ?", id).Take(&j).Error; err != nil {
		return nil, translate(err)
	}
	return &j, nil
}

// Department returns one department.
func (db *DB) Department(ctx context.Context, id string) (*Department, error) {
	var d Department
	if err := db.q(ctx).Where("id = ?", id).Take(&d).Error; err != nil {
		return nil, translate(err)
	}
	return &d, nil
}

// DepartmentByCode returns a city's department by its code.
func (db *DB) DepartmentByCode(ctx context.Context, jurisdictionID, code string) (*Department, error) {
	var d Department
	if err := db.q(ctx).Where("jurisdiction_id = ? AND code = ?", jurisdictionID, code).Take(&d).Error; err != nil {
		return nil, translate(err)
	}
	return &d, nil
}

// Departments returns a city's departments by code.
func (db *DB) Departments(ctx context.Context, jurisdictionID string) ([]Department, error) {
	var ds []Department
	err := db.q(ctx).Where("jurisdiction_id = ?", jurisdictionID).Order("code").Find(&ds).Error
	return ds, translate(err)
}

func (db *DB) isTriage(ctx context.Context, jurisdictionID, departmentID string) (bool, error) {
	j, err := db.Jurisdiction(ctx, jurisdictionID)
	if err != nil {
		return false, err
	}
	return j.TriageDepartmentID != nil && *j.TriageDepartmentID == departmentID, nil
}

// Category returns one category.
func (db *DB) Category(ctx context.Context, id string) (*Category, error) {
	var c Category
	if err := db.q(ctx).Where("id = ?", id).Take(&c).Error; err != nil {
		return nil, translate(err)
	}
	return &c, nil
}

// CategoryByCode returns a city's active category by its code, or ErrNotFound.
func (db *DB) CategoryByCode(ctx context.Context, jurisdictionID, code string) (*Category, error) {
	var c Category
	err := db.q(ctx).Where("jurisdiction_id = ? AND code = ? AND active = ?", jurisdictionID, code, true).Take(&c).Error
	if err != nil {
		return nil, translate(err)
	}
	return &c, nil
}

// Categories returns a city's active categories, by group and name.
func (db *DB) Categories(ctx context.Context, jurisdictionID string) ([]Category, error) {
	var cs []Category
	err := db.q(ctx).Where("jurisdiction_id = ? AND active = ?", jurisdictionID, true).
		Order("group_name, name").Find(&cs).Error
	return cs, translate(err)
}

// Area returns one area.
func (db *DB) Area(ctx context.Context, id string) (*Area, error) {
	var a Area
	if err := db.q(ctx).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, translate(err)
	}
	return &a, nil
}

// AreaByCode returns a city's area by its code.
func (db *DB) AreaByCode(ctx context.Context, jurisdictionID, code string) (*Area, error) {
	var a Area
	if err := db.q(ctx).Where("jurisdiction_id = ? AND code = ?", jurisdictionID, code).Take(&a).Error; err != nil {
		return nil, translate(err)
	}
	return &a, nil
}

// RouteFor picks the department for a category in an area: the rule for that category and
// area, else the category's default department, else the city's triage desk.
func (db *DB) RouteFor(ctx context.Context, c *Case) (string, error) {
	if c.AreaID != nil {
		var r RoutingRule
		err := db.q(ctx).Where("category_id = ? AND area_id = ?", c.CategoryID, *c.AreaID).Limit(1).Find(&r).Error
		if err != nil {
			return "", translate(err)
		}
		if r.ID != "" {
			return r.DepartmentID, nil
		}
	}
	cat, err := db.Category(ctx, c.CategoryID)
	if err != nil {
		return "", err
	}
	if cat.DepartmentID != nil {
		return *cat.DepartmentID, nil
	}
	j, err := db.Jurisdiction(ctx, c.JurisdictionID)
	if err != nil {
		return "", err
	}
	if j.TriageDepartmentID == nil {
		return "", fmt.Errorf("%w: city %s has no triage desk", ErrInvalid, j.ID)
	}
	return *j.TriageDepartmentID, nil
}

// User returns one user.
func (db *DB) User(ctx context.Context, id string) (*User, error) {
	var u User
	if err := db.q(ctx).Where("id = ?", id).Take(&u).Error; err != nil {
		return nil, translate(err)
	}
	return &u, nil
}

// StaffByEmail returns a member of staff by email (case-insensitive).
func (db *DB) StaffByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	err := db.q(ctx).Where("email = ? AND role <> ?", strings.ToLower(strings.TrimSpace(email)), RoleCitizen).Take(&u).Error
	if err != nil {
		return nil, translate(err)
	}
	return &u, nil
}

// Cursors are opaque to clients: the sort values and the id of the last row of a page, as
// base64 JSON.
func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return Problemf(ErrInvalid, "bad-cursor", "the cursor is not one this server gave out; start again without it")
	}
	return nil
}

// CategoryCode, DepartmentCode and AreaCode give the code of a row by id, for wire forms.
func (db *DB) CategoryCode(ctx context.Context, id string) (string, error) {
	return db.codeOf(ctx, "categories", id)
}

// DepartmentCode gives a department's code by id.
func (db *DB) DepartmentCode(ctx context.Context, id string) (string, error) {
	return db.codeOf(ctx, "departments", id)
}

// AreaCode gives an area's code by id.
func (db *DB) AreaCode(ctx context.Context, id string) (string, error) {
	return db.codeOf(ctx, "areas", id)
}

func (db *DB) codeOf(ctx context.Context, table, id string) (string, error) {
	var code string
	err := db.q(ctx).Table(table).Select("code").Where("id = ?", id).Take(&code).Error
	return code, translate(err)
}

// MediaOf returns the photos of several cases, by case, each case's in the order added.
func (db *DB) MediaOf(ctx context.Context, caseIDs []string) (map[string][]Media, error) {
	out := map[string][]Media{}
	if len(caseIDs) == 0 {
		return out, nil
	}
	var ms []Media
	if err := db.q(ctx).Where("case_id IN ?", caseIDs).Order("created_at, id").Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	for _, m := range ms {
		out[*m.CaseID] = append(out[*m.CaseID], m)
	}
	return out, nil
}

// ConfigStamp changes whenever a city's configuration is applied, so long-running processes
// can tell when to rebuild what they derive from it (the area index) without a restart.
func (db *DB) ConfigStamp(ctx context.Context) (string, error) {
	var row struct {
		N    int64
		Last string
	}
	err := db.q(ctx).Raw("SELECT COUNT(*) AS n, COALESCE(MAX(config_hash), '') || COALESCE(CAST(MAX(updated_at) AS TEXT), '') AS last FROM jurisdictions").Scan(&row).Error
	if err != nil {
		return "", translate(err)
	}
	return fmt.Sprintf("%d/%s", row.N, row.Last), nil
}
