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
	"path"
	"slices"
	"strconv"
	"strings"

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
	// Features are built side by side with their versions reserved in advance, so one with a
	// lower number can land after a higher one was applied somewhere (00010 after 00011 on
	// 2026-11-24). Migrations only expand the schema (TestMigrationsOnlyExpand), so applying a
	// missing lower one later is safe; goose would refuse it by default.
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true)}
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

// DownTo rolls the schema back to version (0: empty). For tests and for an operator
// undoing a release; it loses the data of the tables it drops.
func DownTo(ctx context.Context, db *sql.DB, dialect Dialect, version int64) error {
	p, err := provider(db, dialect)
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, version)
	return err
}

// Versions lists the migration versions defined for a dialect, in order: the number each
// file name starts with.
func Versions(dialect Dialect) ([]int64, error) {
	names, err := fs.Glob(files, string(dialect)+"/*.sql")
	if err != nil {
		return nil, err
	}
	var vs []int64
	for _, name := range names {
		num, _, _ := strings.Cut(path.Base(name), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migration %s: the name must start with its version number", name)
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs, nil
}
