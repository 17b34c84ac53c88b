package api

// privacyAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func privacyAccess(f accessFixture) []accessCall { return nil }
