package api

// uploadAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func uploadAccess(f accessFixture) []accessCall { return nil }
