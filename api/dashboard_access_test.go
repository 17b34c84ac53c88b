package api

// dashboardAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func dashboardAccess(f accessFixture) []accessCall { return nil }
