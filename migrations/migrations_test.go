package migrations_test

import (
	"context"
	"testing"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/migrations"
	"github.com/city-eyes/cityeyes/models"
)

// TestMigrateUpDownUp applies every migration to an empty database of this run's kind,
// checks that running again applies nothing, takes them all down and up again.
func TestMigrateUpDownUp(t *testing.T) {
	ctx := context.Background()
	db, err := models.Open(ctx, testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dialect := migrations.SQLite
	if db.Dialect() == models.Postgres {
		dialect = migrations.Postgres
	}
	applied, err := migrations.Up(ctx, db.SQL(), dialect)
	if err != nil || len(applied) == 0 {
		t.Fatalf("first up: %v, %v", applied, err)
	}
	latest := applied[len(applied)-1]
	if v, err := migrations.Version(ctx, db.SQL(), dialect); err != nil || v != latest {
		t.Fatalf("version %d, %v; want %d", v, err, latest)
	}
	if again, err := migrations.Up(ctx, db.SQL(), dialect); err != nil || len(again) != 0 {
		t.Fatalf("second up applied %v, %v", again, err)
	}
	if err := migrations.DownTo(ctx, db.SQL(), dialect, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	var tables int
	q := "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'cases'"
	if dialect == migrations.SQLite {
		q = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'cases'"
	}
	if err := db.SQL().QueryRow(q).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("cases table after down: %d, %v", tables, err)
	}
	if reapplied, err := migrations.Up(ctx, db.SQL(), dialect); err != nil || len(reapplied) != len(applied) {
		t.Fatalf("up after down: %v, %v", reapplied, err)
	}
}

// TestDialectsDefineTheSameVersions keeps the two directories in step.
func TestDialectsDefineTheSameVersions(t *testing.T) {
	pg, err := migrations.Versions(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	lite, err := migrations.Versions(migrations.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if len(pg) == 0 || len(pg) != len(lite) {
		t.Fatalf("postgres has %v, sqlite %v", pg, lite)
	}
	for i := range pg {
		if pg[i] != lite[i] {
			t.Fatalf("postgres has %v, sqlite %v", pg, lite)
		}
	}
}
