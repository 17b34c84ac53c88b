package api

// adminAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func adminAccess(f accessFixture) []accessCall { return nil }
