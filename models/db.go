package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// sqliteBusyTimeout is how long a write on SQLite waits for the one writer before failing.
const sqliteBusyTimeout = 10 * time.Second

// Dialect names the database behind a DB.
type Dialect string

// The databases City Eyes runs on: PostgreSQL in production, SQLite for the embedded default.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is the data layer. It is safe for concurrent use; inside InTx the same methods run in
// the transaction.
type DB struct {
	gorm    *gorm.DB
	dialect Dialect
	// writer, on SQLite, is held by the transaction writing (InTx); nil inside one.
	writer chan struct{}
}

// Open connects to url: a postgres:// or postgresql:// URL selects PostgreSQL; anything else
// is the path of an SQLite file, created if missing.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg := &gorm.Config{
		Logger:         logger.Discard,
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC() },
		// Every write here is explicit about its transaction.
		SkipDefaultTransaction: true,
	}
	var (
		g       *gorm.DB
		err     error
		dialect Dialect
	)
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		dialect = Postgres
		g, err = gorm.Open(postgres.Open(url), cfg)
	} else {
		dialect = SQLite
		if err := os.MkdirAll(filepath.Dir(url), 0o750); err != nil {
			return nil, fmt.Errorf("database directory: %w", err)
		}
		// WAL lets readers run beside the one writer; an immediate transaction takes the
		// write lock at BEGIN, so two writers queue on busy_timeout instead of failing when
		// one upgrades a read lock; foreign keys are off in SQLite unless asked for.
		dsn := "file:" + url + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(" + strconv.Itoa(int(sqliteBusyTimeout.Milliseconds())) + ")" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		g, err = gorm.Open(sqlite.Open(dsn), cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", translate(err))
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, err
	}
	if dialect == SQLite {
		// One writer at a time is all SQLite allows; a small pool keeps readers concurrent
		// without piling up connections that would only wait on the lock.
		sqlDB.SetMaxOpenConns(4)
		// And keep them all open: above database/sql's default of two idle connections,
		// every connection given back under load was closed and another opened, which on
		// SQLite means opening the file, mapping the WAL index and running the pragmas
		// again: a tenth of a report's CPU on the embedded default.
		sqlDB.SetMaxIdleConns(4)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(16)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	db := &DB{gorm: g, dialect: dialect}
	if dialect == SQLite {
		// SQLite has one writer at a time, and a transaction here takes the write lock at
		// BEGIN. Writers that find it taken wait in SQLite's busy handler, which polls by
		// sleeping (1, 2, 5, 10 … 100 ms) while holding one of the few connections readers
		// need too. Queueing them here instead hands the lock over as soon as it is free
		// and keeps the connections for readers.
		db.writer = make(chan struct{}, 1)
	}
	if err := db.Ping(ctx); err != nil {
		sqlDB.Close()
		return nil, err
	}
	return db, nil
}

// Dialect tells which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// SQL returns the connection pool underneath, for migrations.
func (db *DB) SQL() *sql.DB {
	s, _ := db.gorm.DB()
	return s
}

// Close closes the connection pool.
func (db *DB) Close() error { return db.SQL().Close() }

// Ping checks that the database answers (readiness).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.SQL().PingContext(ctx); err != nil {
		return fmt.Errorf("database: %w: %v", ErrUnavailable, err)
	}
	return nil
}

func (db *DB) q(ctx context.Context) *gorm.DB { return db.gorm.WithContext(ctx) }

// InTx runs fn in one transaction, committed when fn returns nil and rolled back otherwise.
// A transaction that loses a serialization race or a deadlock is run again, a few times:
// fn must therefore do nothing outside the database that it cannot repeat.
func (db *DB) InTx(ctx context.Context, fn func(tx *DB) error) error {
	const attempts = 4
	var err error
	if db.writer != nil {
		// At most as long as SQLite itself would wait (busy_timeout): a transaction begun
		// from inside another on the outer DB then fails as it did, rather than waiting for
		// a writer that waits for it.
		wait := time.NewTimer(sqliteBusyTimeout)
		select {
		case db.writer <- struct{}{}:
			defer func() { <-db.writer }()
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			return translate(ctx.Err())
		}
		wait.Stop()
	}
	for i := range attempts {
		err = db.gorm.WithContext(ctx).Transaction(func(g *gorm.DB) error {
			return fn(&DB{gorm: g, dialect: db.dialect})
		})
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(i+1) * 20 * time.Millisecond)
	}
	return translate(err)
}

// retryable reports whether a transaction failed only because of another one running beside
// it, so that running it again may succeed.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return strings.Contains(err.Error(), "SQLITE_BUSY")
}

// translate turns driver errors into the error kinds of this package, keeping the original
// text for the logs. Errors that already carry a kind pass through.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var p *Problem
	if errors.As(err, &p) {
		return err
	}
	for _, kind := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrMalformed, ErrForbidden, ErrUnavailable, ErrUnauthorized} {
		if errors.Is(err, kind) {
			return err
		}
	}
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%w: %v", ErrConflict, err)
	case unavailable(err):
		return fmt.Errorf("%w: database: %v", ErrUnavailable, err)
	}
	return err
}

// unavailable reports whether err means the database could not be reached or is going
// away, as opposed to a fault in the query: those become 503 and a retry, never a 500.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is "connection exception"; 57P01-57P03 are shutdowns and start-ups.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	// ErrConnClosed: a pooled connection the server's going away closed under a request
	// (seen as a 500 in TestPostgresRestarted).
	return errors.As(err, &netErr) || errors.As(err, &connectErr) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "SQLITE_BUSY")
}
