package api

// adminAccess lists this feature's routes for TestEveryRouteAsEveryRole. Only the
// administrator gets through; the administrator's writes here change nothing (or are
// refused), so the rows after them see the same city.
func adminAccess(f accessFixture) []accessCall {
	only := func(status int) []int { return []int{401, 403, 403, 403, 403, 403, 403, status} }
	empty := map[string]any{"type": "FeatureCollection", "features": []any{}}
	return []accessCall{
		{"GET", "/v1/admin/config", nil, "", only(200), nil, ""},
		{"GET", "/v1/admin/settings", nil, "", only(200), nil, ""},
		{"PATCH", "/v1/admin/settings", map[string]any{"name": "Testville"}, "", only(200), nil, ""},
		{"GET", "/v1/admin/departments", nil, "", only(200), nil, ""},
		{"POST", "/v1/admin/departments", DepartmentBody{}, "", only(422), nil, ""},
		{"PATCH", "/v1/admin/departments/DESK", DepartmentBody{Name: "Triage desk"}, "", only(200), nil, "PATCH /v1/admin/departments/:code"},
		{"GET", "/v1/admin/categories", nil, "", only(200), nil, ""},
		{"POST", "/v1/admin/categories", map[string]any{"code": "other"}, "", only(422), nil, ""},
		{"PUT", "/v1/admin/categories/other", map[string]any{"code": "other", "name": "Something else", "group": "Other", "sla_hours": 0}, "", only(200), nil, "PUT /v1/admin/categories/:code"},
		{"DELETE", "/v1/admin/categories/no-such-category", nil, "", only(404), nil, "DELETE /v1/admin/categories/:code"},
		{"GET", "/v1/admin/areas", nil, "", only(200), nil, ""},
		// Removing every area leaves the rule in east without its area: refused.
		{"PUT", "/v1/admin/areas", empty, "", only(422), nil, ""},
		{"POST", "/v1/admin/areas", empty, "", only(200), nil, ""},
		{"GET", "/v1/admin/routing", nil, "", only(200), nil, ""},
		{"PUT", "/v1/admin/routing", []RuleBody{{Category: "pothole", Area: "east", Department: "PARKS"}}, "", only(200), nil, ""},
		{"PUT", "/v1/admin/routing/pothole/east", RuleBody{Department: "PARKS"}, "", only(200), nil, "PUT /v1/admin/routing/:category/:area"},
		{"DELETE", "/v1/admin/routing/tree/west", nil, "", only(404), nil, "DELETE /v1/admin/routing/:category/:area"},
	}
}
