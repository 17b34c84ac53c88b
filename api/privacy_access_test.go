package api

// privacyAccess lists this feature's routes for TestEveryRouteAsEveryRole. DELETE /v1/me is
// called without its confirmation, so the table's citizens keep their data for the rows
// after these; TestDeleteMe deletes for real, and TestExportMe checks that one citizen's
// export holds nothing of another's (here "another citizen" supported the case, so its
// number rightly appears in their export).
func privacyAccess(f accessFixture) []accessCall {
	return []accessCall{
		{"GET", "/v1/me/export", nil, "", []int{401, 200, 200, 403, 403, 403, 403, 403}, nil, ""},
		{"DELETE", "/v1/me", nil, "", []int{401, 422, 422, 403, 403, 403, 403, 403}, nil, ""},
	}
}
