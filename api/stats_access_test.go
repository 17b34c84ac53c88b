package api

// statsAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func statsAccess(f accessFixture) []accessCall { return nil }
