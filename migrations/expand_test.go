package migrations_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/migrations"
	"github.com/city-eyes/cityeyes/models"
)

// column is what the previous release's queries rely on of a column.
type column struct {
	typ      string
	nullable bool
	hasDflt  bool
}

// schema reads every column of every table (goose's own table aside), by "table.column".
func schema(t *testing.T, db *models.DB, dialect migrations.Dialect) map[string]column {
	t.Helper()
	q := `SELECT table_name, column_name, data_type, is_nullable = 'YES', column_default IS NOT NULL
		FROM information_schema.columns WHERE table_schema = current_schema()`
	if dialect == migrations.SQLite {
		q = `SELECT m.name, p.name, p.type, p."notnull" = 0, p.dflt_value IS NOT NULL
			FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'`
	}
	rows, err := db.SQL().Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]column{}
	for rows.Next() {
		var table, name string
		var c column
		if err := rows.Scan(&table, &name, &c.typ, &c.nullable, &c.hasDflt); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(table, "goose_") || strings.HasPrefix(table, "sqlite_") {
			continue
		}
		out[table+"."+name] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrationsOnlyExpand keeps the rule of docs/deploy.md ("Upgrades"): a release's
// migrations only add, so that the previous release, still serving while they run and
// until every process is replaced, keeps working on the new schema. For every migration it
// compares the schema before and after: every column the earlier schema had is still there
// with its type and is not made NOT NULL, and every column added to an existing table is
// nullable or has a default (the previous release's INSERTs do not name it).
//
// What this proves: the previous release's queries, which can only name columns of its own
// schema, still find them all, and its writes are not refused for a column it does not
// know. It does not prove that the new code reads old rows well (that is each feature's own
// test), nor anything about data migrations inside a file. A column or table dropped in a
// later release, once no serving release uses it (the contract step), is listed in
// contracted with the release that stopped using it.
func TestMigrationsOnlyExpand(t *testing.T) {
	// contracted lists "table.column" (or "table.*") removed on purpose, with why it is safe.
	contracted := map[string]string{}

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
	versions, err := migrations.Versions(dialect)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Up(ctx, db.SQL(), dialect); err != nil {
		t.Fatal(err)
	}
	// Walk down one version at a time, reading the schema at each.
	schemas := make([]map[string]column, len(versions))
	for i := len(versions) - 1; i >= 0; i-- {
		schemas[i] = schema(t, db, dialect)
		if i > 0 {
			if err := migrations.DownTo(ctx, db.SQL(), dialect, versions[i-1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 1; i < len(versions); i++ {
		before, after := schemas[i-1], schemas[i]
		tables := map[string]bool{}
		for k := range before {
			tables[strings.Split(k, ".")[0]] = true
		}
		var problems []string
		for k, b := range before {
			a, ok := after[k]
			table := strings.Split(k, ".")[0]
			switch {
			case contracted[k] != "" || contracted[table+".*"] != "":
			case !ok:
				problems = append(problems, fmt.Sprintf("%s is gone (dropped or renamed)", k))
			case a.typ != b.typ:
				problems = append(problems, fmt.Sprintf("%s changed type from %s to %s", k, b.typ, a.typ))
			case b.nullable && !a.nullable:
				problems = append(problems, fmt.Sprintf("%s became NOT NULL", k))
			}
		}
		for k, a := range after {
			if _, old := before[k]; !old && tables[strings.Split(k, ".")[0]] && !a.nullable && !a.hasDflt {
				problems = append(problems, fmt.Sprintf("%s was added NOT NULL without a default", k))
			}
		}
		slices.Sort(problems)
		for _, p := range problems {
			t.Errorf("migration %d: %s: the previous release would break while it still serves (docs/deploy.md, Upgrades)", versions[i], p)
		}
	}
	if len(schemas) < 2 || len(schemas[len(schemas)-1]) <= len(schemas[0]) {
		t.Fatalf("the schemas read do not grow: %d versions", len(schemas))
	}
}
