package api

// accountAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func accountAccess(f accessFixture) []accessCall { return nil }
