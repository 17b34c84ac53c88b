package testenv

import (
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// PersonalLeft walks every column of every row of every table and returns where any of
// markers still appears, as "table.column: value", in a stable order. Tests of deletion and
// retention plant unmistakable markers in every personal field (a device id, a push token, a
// name, a description, a comment, the user's id) and then require this to come back empty,
// but for the places keep allows (such as the erased account's own id). A table added later
// is walked too, so personal data put in a new place is caught without changing the test.
func PersonalLeft(t testing.TB, db *sql.DB, markers []string, keep func(table, column string) bool) []string {
	t.Helper()
	tables, err := tableNames(db)
	if err != nil {
		t.Fatal(err)
	}
	var hits []string
	for _, table := range tables {
		rows, err := db.Query("SELECT * FROM " + table)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			for i, v := range vals {
				var s string
				switch v := v.(type) {
				case nil:
					continue
				case []byte:
					s = string(v)
				default:
					s = fmt.Sprint(v)
				}
				for _, m := range markers {
					if m != "" && strings.Contains(strings.ToLower(s), strings.ToLower(m)) && (keep == nil || !keep(table, cols[i])) {
						hits = append(hits, fmt.Sprintf("%s.%s: %q", table, cols[i], s))
					}
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	sort.Strings(hits)
	return hits
}

// tableNames lists the tables of the database, PostgreSQL's or SQLite's, but the
// migrations' own bookkeeping.
func tableNames(db *sql.DB) ([]string, error) {
	q := "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
	rows, err := db.Query(q)
	if err != nil {
		rows, err = db.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
		if err != nil {
			return nil, err
		}
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		if n != "goose_db_version" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, rows.Err()
}
