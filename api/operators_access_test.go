package api

// operatorAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func operatorAccess(f accessFixture) []accessCall { return nil }
