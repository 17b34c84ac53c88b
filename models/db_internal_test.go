package models

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestTranslateUnavailable: the errors of a database going away are ErrUnavailable (503 and
// a retry), a fault in the query is not.
func TestTranslateUnavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("select: %w", pgconn.ErrConnClosed), true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pgconn.PgError{Code: "42601", Message: "syntax error"}, false},
		{errors.New("some other failure"), false},
	} {
		if got := errors.Is(translate(c.err), ErrUnavailable); got != c.want {
			t.Errorf("translate(%v) unavailable = %v, want %v", c.err, got, c.want)
		}
	}
}
