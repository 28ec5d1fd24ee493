package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/fnv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
)

// Publish encodes v as pubsub.Publish would (id, correlation id from ctx, trace
// context of ctx's span, key, metadata) and inserts it into the outbox within tx. The
// message is relayed by Run once tx commits; if tx rolls back, nothing is published.
//
// A message with a key takes a transaction-scoped lock on its topic and key, held
// until tx ends: transactions publishing to one key commit one after the other, so
// Run relays a key's messages in commit order. Call Publish late in the transaction,
// and, when one transaction publishes to several keys, in the same key order
// everywhere: PostgreSQL aborts one of two transactions that wait for each other's
// keys (SQLSTATE 40P01, deadlock_detected), to be retried by the caller.
func Publish[T any](ctx context.Context, tx *sql.Tx, o *Outbox, t pubsub.Topic[T], v T, opts ...pubsub.PublishOption) error {
	if tx == nil {
		return errNilTx
	}
	if o == nil || o.c == nil {
		return errNoOutbox
	}
	msg, err := pubsub.Encode(ctx, o.c, t, v, opts...)
	if err != nil {
		return err
	}
	return o.insert(ctx, tx, t.Name(), msg)
}

// insert writes msg for topic into the outbox in tx.
func (o *Outbox) insert(ctx context.Context, tx *sql.Tx, topic string, msg *message.Message) error {
	md, err := json.Marshal(map[string]string(msg.Metadata))
	if err != nil {
		return fmt.Errorf("outbox: encoding the metadata of message %s: %w", msg.UUID, err)
	}
	key, keyed := msg.Metadata[metadata.Key]
	slot := slotOf(topic, key, msg.UUID, keyed)
	q := o.q.insert
	args := []any{slot, msg.UUID, topic, key, string(md), []byte(msg.Payload)}
	if keyed {
		q = o.q.insertLocked
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("outbox: writing message %s for topic %q: %w", msg.UUID, topic, err)
	}
	return nil
}

// slotOf returns the relay slot of a message: a hash of its topic and key, or of its
// id when it has none.
func slotOf(topic, key, id string, keyed bool) int16 {
	h := fnv.New32a()
	h.Write([]byte(topic))
	h.Write([]byte{0})
	if keyed {
		h.Write([]byte(key))
	} else {
		h.Write([]byte(id))
	}
	return int16(h.Sum32() % Slots)
}
