package api

// operatorAccess lists this feature's routes for TestEveryRouteAsEveryRole. The harness
// serves no queue dashboard, so an administrator gets 404 (no-queue-dashboard) after the
// role check; TestQueueDashboard covers the session with a dashboard mounted.
func operatorAccess(f accessFixture) []accessCall {
	return []accessCall{
		{"POST", "/v1/admin/queues/session", nil, "", []int{401, 403, 403, 403, 403, 403, 403, 404}, nil, ""},
	}
}
