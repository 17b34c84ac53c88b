// Package migrations holds the versioned database schema, one numbered SQL file per change,
// for each database City Eyes runs on, and applies them.
//
// The two directories carry the same schema in each database's own types (PostgreSQL's UUID,
// JSONB and TIMESTAMPTZ; SQLite's TEXT and TIMESTAMP, which its driver reads back as time).
// A change to the schema adds the next numbered file to both; a test applies every version to
// both databases.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialect names the database a schema is written for.
type Dialect string

// The databases City Eyes runs on.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Up applies every migration not yet applied and reports the versions it applied.
// It is safe to run from several processes at once on PostgreSQL: goose takes a session
// advisory lock there, so one applies and the others wait and find nothing left to do.
func Up(ctx context.Context, db *sql.DB, dialect Dialect) ([]int64, error) {
	p, err := provider(db, dialect)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", dialect, err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// Version reports the newest applied migration.
func Version(ctx context.Context, db *sql.DB, dialect Dialect) (int64, error) {
	p, err := provider(db, dialect)
	if err != nil {
		return 0, err
	}
	return p.GetDBVersion(ctx)
}

func provider(db *sql.DB, dialect Dialect) (*goose.Provider, error) {
	sub, err := fs.Sub(files, string(dialect))
	if err != nil {
		return nil, fmt.Errorf("migrations for %q: %w", dialect, err)
	}
	var gd goose.Dialect
	var opts []goose.ProviderOption
	switch dialect {
	case Postgres:
		gd = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	case SQLite:
		gd = goose.DialectSQLite3
	default:
		return nil, fmt.Errorf("no migrations for database %q", dialect)
	}
	return goose.NewProvider(gd, db, sub, opts...)
}
