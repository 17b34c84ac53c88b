package main

import (
	"testing"

	"github.com/city-eyes/cityeyes/api"
)

// TestLimitsFromEnvironment: the write rate limits can be raised for a load test, and a
// value that is not a count is refused at start.
func TestLimitsFromEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    api.Limits
		wantErr bool
	}{
		{"defaults", nil, api.Limits{}, false},
		{"raised", map[string]string{"CITYEYES_LIMIT_REPORTS_PER_USER": "100000", "CITYEYES_LIMIT_WRITES_PER_IP": "5000",
			"CITYEYES_LIMIT_WRITES_PER_USER": "7", "CITYEYES_LIMIT_DEVICES_PER_IP": "8", "CITYEYES_LIMIT_LOGINS_PER_IP": "9"},
			api.Limits{ReportsPerUser: 100000, WritesPerIP: 5000, WritesPerUser: 7, DevicesPerIP: 8, LoginsPerIP: 9}, false},
		{"not a number", map[string]string{"CITYEYES_LIMIT_REPORTS_PER_USER": "lots"}, api.Limits{}, true},
		{"negative", map[string]string{"CITYEYES_LIMIT_WRITES_PER_IP": "-1"}, api.Limits{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"CITYEYES_DATA_DIR": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := loadConfig(func(k string) string { return env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err == nil && cfg.Limits != tt.want {
				t.Fatalf("limits %+v, want %+v", cfg.Limits, tt.want)
			}
		})
	}
}
