package api

// accountAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func accountAccess(f accessFixture) []accessCall {
	return []accessCall{
		// Anyone may try to sign in; these credentials are no one's.
		{"POST", "/v1/auth/account", AccountSignInRequest{Email: "nobody@test.example", Password: "not-a-password", DeviceID: "device-matrix-account", Platform: "ios"}, "",
			[]int{401, 401, 401, 401, 401, 401, 401, 401}, nil, ""},
		// Only citizens make their identity an account; this email is not one, so nothing changes.
		{"POST", "/v1/me/account", AccountRequest{Email: "not an email", Password: "long-enough-password"}, "",
			[]int{401, 422, 422, 403, 403, 403, 403, 403}, nil, ""},
	}
}
