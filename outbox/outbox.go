package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pubsubkit/pubsub"
)

// Outbox writes messages in the caller's transactions, relays them to a client's
// transport, and keeps the inbox of the subscriptions made with Subscribe. It is safe
// for concurrent use; several Outboxes, in one process or many, may share the tables.
type Outbox struct {
	db   *sql.DB
	c    *pubsub.Client
	opts options
	t    tables
	q    queries
	// legacyInbox is when the inbox was migrated from schema version 1 (zero if it
	// never was): a CloudEvent recorded before then is found under its id alone.
	legacyInbox time.Time

	relayed    atomic.Int64 // messages published and deleted by Run
	duplicates atomic.Int64 // redeliveries the inbox acked without calling a handler
}

// New returns an Outbox on db, a PostgreSQL database, relaying through c. It creates
// its tables when they are missing (see OUTBOX.md for the schema) and refuses tables
// of a newer schema version than SchemaVersion.
func New(db *sql.DB, c *pubsub.Client, opts ...Option) (*Outbox, error) {
	if db == nil || c == nil {
		return nil, fmt.Errorf("outbox: %w: New needs a *sql.DB and a *pubsub.Client", pubsub.ErrInvalidOption)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	t := newTables(o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := t.migrate(ctx, db, o.prefix); err != nil {
		return nil, err
	}
	legacy, err := t.legacyInbox(ctx, db)
	if err != nil {
		return nil, err
	}
	return &Outbox{db: db, c: c, opts: o, t: t, q: newQueries(t), legacyInbox: legacy}, nil
}

// Stats are counters of one Outbox since New.
type Stats struct {
	Relayed    int64 // messages Run published and deleted from the outbox
	Duplicates int64 // redeliveries the inbox acked without calling the handler
}

// Stats returns the Outbox's counters.
func (o *Outbox) Stats() Stats {
	return Stats{Relayed: o.relayed.Load(), Duplicates: o.duplicates.Load()}
}

// Pending returns how many messages wait in the outbox, committed and not yet relayed.
func (o *Outbox) Pending(ctx context.Context) (int64, error) {
	var n int64
	if err := o.db.QueryRowContext(ctx, `SELECT count(*) FROM `+o.t.outbox).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox: counting pending messages: %w", err)
	}
	return n, nil
}

// errNilTx is returned by Publish without a transaction.
var errNilTx = fmt.Errorf("outbox: %w: Publish needs a transaction (a nil *sql.Tx was given)", pubsub.ErrInvalidOption)

// errNoOutbox is returned by Publish and Subscribe without an Outbox made by New.
var errNoOutbox = fmt.Errorf("outbox: %w: a nil Outbox, or one not made by New", pubsub.ErrInvalidOption)
