package api

// statsAccess lists this feature's routes for TestEveryRouteAsEveryRole. Supervisors and
// administrators see their own city's figures; asking for another city is refused. The case
// lists and exports must not show the fixture's case to the other city's supervisor.
func statsAccess(f accessFixture) []accessCall {
	boss := []int{401, 403, 403, 403, 403, 200, 200, 200}
	ownCity := []int{401, 403, 403, 403, 403, 200, 403, 200}
	other := []string{"supervisor, other city"}
	return []accessCall{
		{"GET", "/v1/stats", nil, "", boss, nil, ""},
		{"GET", "/v1/stats?group_by=day&jurisdiction=testville", nil, "", ownCity, nil, ""},
		{"GET", "/v1/stats/overdue", nil, "", boss, other, ""},
		{"GET", "/v1/stats/overdue?jurisdiction=testville", nil, "", ownCity, nil, ""},
		{"GET", "/v1/stats/breaching?within_hours=720", nil, "", boss, other, ""},
		{"GET", "/v1/stats/hotspots?by=category", nil, "", boss, nil, ""},
		{"GET", "/v1/exports/cases.csv", nil, "", boss, other, ""},
		{"GET", "/v1/exports/cases.geojson?status=open", nil, "", boss, other, ""},
		// Reporters' contact details are the supervisors' alone.
		{"GET", "/v1/exports/cases.csv?include=contact", nil, "", []int{401, 403, 403, 403, 403, 200, 200, 403}, other, ""},
	}
}
