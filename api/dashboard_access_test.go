package api

// dashboardAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func dashboardAccess(f accessFixture) []accessCall {
	return []accessCall{
		// Staff of any kind draw their own city's map; citizens have no use for it.
		{"GET", "/v1/areas", nil, "", []int{401, 403, 403, 200, 200, 200, 200, 200}, nil, ""},
	}
}
