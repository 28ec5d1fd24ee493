package outbox

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
)

// Subscribe registers h for the messages of topic t in group group on the Outbox's
// client, as pubsub.Subscribe does, with the same options and Delivery policy. Each
// delivery runs h inside a transaction that first records the message in the inbox of
// group under a key unique for what it is: a CloudEvent (a message with a ce_source)
// by its source and id, as the CloudEvents spec makes them unique, any other message
// by its id (Message.ID). When the key is already recorded, the message was handled
// and committed before, and it is acked without calling h. (Inbox rows written before
// the schema version 2 migration recorded a CloudEvent by its id alone; they are
// still honoured, so an event handled just before an upgrade is not handled again.) When h returns nil the transaction
// commits h's writes and the record together; when h returns an error or panics it
// rolls back both, and the error goes through the subscription's Delivery policy
// (retries, dead letters) exactly as with pubsub.Subscribe. h must do its database
// work in tx and must not commit or roll it back.
func Subscribe[T any](o *Outbox, t pubsub.Topic[T], group string, h func(ctx context.Context, tx *sql.Tx, m *pubsub.Message[T]) error, opts ...pubsub.SubscribeOption) error {
	if o == nil || o.c == nil {
		return errNoOutbox
	}
	if h == nil {
		return fmt.Errorf("outbox: %w: Subscribe(%q, %q) with a nil handler", pubsub.ErrInvalidOption, t.Name(), group)
	}
	return pubsub.Subscribe(o.c, t, group, func(ctx context.Context, m *pubsub.Message[T]) error {
		return o.handle(ctx, group, m.Metadata[metadata.CloudEventsSource], m.ID, func(tx *sql.Tx) error { return h(ctx, tx, m) })
	}, opts...)
}

// handle runs h in a transaction with the inbox record of (group, source, id); source
// is a CloudEvent's ce_source, "" for other messages.
func (o *Outbox) handle(ctx context.Context, group, source, id string, h func(tx *sql.Tx) error) error {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: inbox of %q: %w", group, err)
	}
	defer tx.Rollback() // after a commit, a no-op
	// A concurrent delivery of the same id waits here on the primary key until the
	// first one commits (then this one inserts nothing) or rolls back.
	res, err := tx.ExecContext(ctx, o.q.markHandled, group, source, id)
	if err != nil {
		return fmt.Errorf("outbox: recording message %s in the inbox of %q: %w", id, group, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("outbox: recording message %s in the inbox of %q: %w", id, group, err)
	}
	if n > 0 && source != "" {
		if n, err = o.handledBeforeMigration(ctx, tx, group, id); err != nil {
			return fmt.Errorf("outbox: reading the inbox of %q for message %s: %w", group, id, err)
		}
		n = 1 - n
	}
	if n == 0 {
		o.duplicates.Add(1)
		return nil // handled before: ack
	}
	if err := h(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: committing message %s of %q: %w", id, group, err)
	}
	return nil
}

// handledBeforeMigration returns 1 when the CloudEvent id was recorded in the inbox of
// group under its id alone, before the inbox was migrated to schema version 2, and 0
// otherwise.
func (o *Outbox) handledBeforeMigration(ctx context.Context, tx *sql.Tx, group, id string) (int64, error) {
	if o.legacyInbox.IsZero() {
		return 0, nil
	}
	var found bool
	if err := tx.QueryRowContext(ctx, o.q.legacyHandled, group, id, o.legacyInbox).Scan(&found); err != nil || !found {
		return 0, err
	}
	return 1, nil
}

// Prune deletes inbox records older than the retention (WithInboxRetention) and
// returns how many it deleted. Run calls it every prune interval.
func (o *Outbox) Prune(ctx context.Context) (int64, error) {
	var total int64
	for {
		res, err := o.db.ExecContext(ctx, o.q.prune, o.opts.retention.Seconds())
		if err != nil {
			return total, fmt.Errorf("outbox: pruning the inbox: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("outbox: pruning the inbox: %w", err)
		}
		total += n
		if n < 10000 {
			return total, nil
		}
	}
}
