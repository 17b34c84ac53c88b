package api

// uploadAccess lists this feature's routes for TestEveryRouteAsEveryRole.
func uploadAccess(f accessFixture) []accessCall {
	return []accessCall{
		// Citizens and staff of any city may upload a photo; only the uploader can use it.
		{"POST", "/v1/uploads", UploadRequest{ContentType: "image/jpeg", Size: 1000}, "",
			[]int{401, 201, 201, 201, 201, 201, 201, 201}, nil, ""},
	}
}
