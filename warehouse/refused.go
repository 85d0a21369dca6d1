package warehouse

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acme/pipeline/event"
)

// RecordError reports whether err is one that a single row can explain: a
// data exception (SQLSTATE class 22: a number out of range, a bad value for
// the column's type) or an integrity violation (class 23: a CHECK, a NOT
// NULL). Others (privileges, a missing table, a full disk, a lost
// connection) say nothing about the rows, and retrying the load is the fix.
func RecordError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23":
		return true
	}
	return false
}

// RefusedRow is a row that gold refuses, with PostgreSQL's reason.
type RefusedRow struct {
	Index  int    // in the rows given to FindRefused
	Code   string // SQLSTATE
	Reason string // PostgreSQL's message, naming the column when it does
}

// FindRefused finds the rows that a live load refuses, by loading them the
// staged way in one transaction that it always rolls back: the whole set,
// then halves of a refused set, down to single rows, each try in a
// savepoint. So it finds every refused row in about 2·n rows loaded for one
// bad row among n, and changes nothing. An error that is not a RecordError
// (the database went away, a privilege is missing) stops the search.
func (s *Store) FindRefused(ctx context.Context, rows []event.Row) ([]RefusedRow, error) {
	var refused []RefusedRow
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var try func(lo, hi int) error
		try = func(lo, hi int) error {
			if lo >= hi {
				return nil
			}
			if _, err := tx.Exec(ctx, "SAVEPOINT refused"); err != nil {
				return err
			}
			loadErr := s.tryLoad(ctx, tx, rows[lo:hi])
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT refused"); err != nil {
				return err
			}
			if loadErr == nil {
				return nil
			}
			if !RecordError(loadErr) {
				return loadErr
			}
			if hi-lo == 1 {
				var pgErr *pgconn.PgError
				errors.As(loadErr, &pgErr)
				reason := pgErr.Message
				if pgErr.Detail != "" {
					reason += ": " + pgErr.Detail
				}
				if len(reason) > maxReason {
					reason = strings.ToValidUTF8(reason[:maxReason], "") + "…"
				}
				if pgErr.ColumnName != "" {
					reason = "column " + pgErr.ColumnName + ": " + reason
				}
				refused = append(refused, RefusedRow{Index: lo, Code: pgErr.Code, Reason: reason})
				return nil
			}
			mid := lo + (hi-lo)/2
			if err := try(lo, mid); err != nil {
				return err
			}
			return try(mid, hi)
		}
		if err := try(0, len(rows)); err != nil {
			return err
		}
		return errRollback
	})
	if err != nil && !errors.Is(err, errRollback) {
		return nil, fmt.Errorf("find the rows gold refuses among %d: %w", len(rows), err)
	}
	return refused, nil
}

// maxReason bounds a refusal's reason: PostgreSQL's detail may quote the
// whole row.
const maxReason = 300

// errRollback ends FindRefused's transaction without committing it.
var errRollback = errors.New("rolled back on purpose")

// tryLoad stages rows and moves them into gold as LoadLive's staged path
// does, in tx.
func (s *Store) tryLoad(ctx context.Context, tx pgx.Tx, rows []event.Row) error {
	if _, err := s.stage(ctx, tx, SliceRows(rows), nil); err != nil {
		return err
	}
	var ins, pay, aud int64
	return moveStaged(ctx, tx, 0, &ins, &pay, &aud, nil)
}
