package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
)

// Run relays committed messages to the client's transport until ctx is done, then
// returns nil; it also prunes the inbox (WithInboxRetention). It is woken by the
// NOTIFY of each commit that wrote to the outbox when the driver is pgx's stdlib, and
// looks every poll interval in any case.
//
// Run works through relay slots (Slots): it holds a slot in a transaction, reads up to
// the batch size of its oldest rows, hands them all to the transport at once
// (PublishMessageAsync: the transport batches them), waits for every
// acknowledgement, deletes the acknowledged rows and commits. A row is deleted only
// after the transport acknowledged it; a crash or a lost connection before the commit
// leaves the rows to be relayed again (at-least-once). Several Runs, in one process or
// many, share the slots: each slot is relayed by one at a time, so a key's messages
// are published in commit order. Database errors are logged and retried with backoff
// (a PostgreSQL restart is waited out); Run returns an error only when the client is
// closed.
func (o *Outbox) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	listenCtx, stopListening := context.WithCancel(ctx)
	defer func() {
		stopListening()
		wg.Wait()
	}()
	// The listener holds a connection for as long as Run runs: on a pool of one it
	// would leave none to relay with.
	if o.opts.listen && o.db.Stats().MaxOpenConnections != 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.listen(listenCtx, wake)
		}()
	}
	poll := time.NewTicker(o.opts.pollInterval)
	defer poll.Stop()
	nextPrune := time.Now()
	backoff := 0
	for {
		if time.Now().After(nextPrune) {
			if n, err := o.Prune(ctx); err != nil {
				o.opts.logger.Warn("outbox: pruning the inbox failed; retrying at the next interval", "error", err)
			} else if n > 0 {
				o.opts.logger.Debug("outbox: pruned the inbox", "rows", n)
			}
			nextPrune = time.Now().Add(o.opts.pruneInterval)
		}
		more, err := o.relayOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, pubsub.ErrClosed):
			return fmt.Errorf("outbox: Run: %w", err)
		case err != nil:
			backoff = min(backoff+1, 6)
			d := time.Duration(50<<backoff) * time.Millisecond // 100 ms .. 3.2 s
			o.opts.logger.Warn("outbox: relaying failed; retrying", "error", err, "in", d)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
			continue
		}
		backoff = 0
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// relayOnce relays one batch of every slot that has rows and another relay does not
// hold. more says that a slot had a full batch, so more rows may wait; the error is
// the first slot's failure.
func (o *Outbox) relayOnce(ctx context.Context) (more bool, err error) {
	slots, err := o.busySlots(ctx)
	if err != nil {
		return false, err
	}
	rand.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	var first error
	for _, s := range slots {
		// A slot that fails does not hold up the others.
		n, err := o.relaySlot(ctx, s)
		if err != nil && first == nil {
			first = err
		}
		if n == o.opts.batchSize {
			more = true
		}
	}
	return more, first
}

// busySlots returns the slots of the oldest rows.
func (o *Outbox) busySlots(ctx context.Context) ([]int16, error) {
	rows, err := o.db.QueryContext(ctx, o.q.busySlots)
	if err != nil {
		return nil, fmt.Errorf("outbox: reading the outbox: %w", err)
	}
	defer rows.Close()
	var slots []int16
	for rows.Next() {
		var s int16
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("outbox: reading the outbox: %w", err)
		}
		slots = append(slots, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: reading the outbox: %w", err)
	}
	return slots, nil
}

// batchTimeout bounds the database work of one batch.
const batchTimeout = 2 * time.Minute

// row is one outbox row read by the relay.
type row struct {
	seq   int64
	topic string
	msg   *message.Message
}

// relaySlot relays one batch of slot s, unless another relay holds it, and returns
// how many rows it read.
func (o *Outbox) relaySlot(ctx context.Context, s int16) (int, error) {
	// A batch once begun is finished even when Run is stopping: database/sql rolls a
	// transaction back when its context ends, and the rows it published would then be
	// published again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("outbox: relaying slot %d: %w", s, err)
	}
	defer tx.Rollback()
	var held bool
	if err := tx.QueryRowContext(ctx, o.q.lockSlot, s).Scan(&held); err != nil {
		return 0, fmt.Errorf("outbox: relaying slot %d: %w", s, err)
	}
	if !held {
		return 0, nil // another relay has it
	}
	batch, err := o.readSlot(ctx, tx, s)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	acked, failed := o.publish(batch)
	if len(acked) > 0 {
		if _, err := tx.ExecContext(ctx, o.q.deleteRows, seqArray(acked)); err != nil {
			return 0, fmt.Errorf("outbox: deleting %d relayed messages: %w", len(acked), err)
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("outbox: deleting %d relayed messages: %w", len(acked), err)
		}
		o.relayed.Add(int64(len(acked)))
	}
	if failed != nil {
		return 0, failed
	}
	return len(batch), nil
}

// readSlot reads the oldest rows of slot s.
func (o *Outbox) readSlot(ctx context.Context, tx *sql.Tx, s int16) ([]row, error) {
	rows, err := tx.QueryContext(ctx, o.q.readSlot, s, o.opts.batchSize)
	if err != nil {
		return nil, fmt.Errorf("outbox: reading slot %d: %w", s, err)
	}
	defer rows.Close()
	var batch []row
	for rows.Next() {
		var (
			r       row
			id      string
			md      []byte
			payload []byte
		)
		if err := rows.Scan(&r.seq, &id, &r.topic, &md, &payload); err != nil {
			return nil, fmt.Errorf("outbox: reading slot %d: %w", s, err)
		}
		r.msg = message.NewMessage(id, payload)
		if err := json.Unmarshal(md, &r.msg.Metadata); err != nil {
			return nil, fmt.Errorf("outbox: metadata of message %s (seq %d) is not a JSON object of strings: %w", id, r.seq, err)
		}
		batch = append(batch, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: reading slot %d: %w", s, err)
	}
	return batch, nil
}

// publish hands every row of batch to the transport at once and waits for each
// acknowledgement. It returns the seqs to delete: the acknowledged rows, except those
// after a failed row of the same key (they are kept, to be published again after it,
// so that the key's order holds on the retry), and the first failure.
func (o *Outbox) publish(batch []row) (acked []int64, failed error) {
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	wg.Add(len(batch))
	// The relay's context is not Run's: a batch handed over is waited for even when
	// Run is stopping, so that its rows are deleted.
	ctx := context.Background()
	for i, r := range batch {
		o.c.PublishMessageAsync(ctx, r.topic, r.msg, func(err error) {
			errs[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	stopped := map[string]bool{}
	for i, r := range batch {
		k := r.msg.UUID
		if key, ok := r.msg.Metadata[metadata.Key]; ok {
			k = r.topic + "\x00" + key
		}
		if errs[i] != nil {
			stopped[k] = true
			if failed == nil {
				failed = errs[i]
			}
			continue
		}
		if !stopped[k] {
			acked = append(acked, r.seq)
		}
	}
	return acked, failed
}

// seqArray formats seqs as a PostgreSQL array literal, so any driver can pass it.
func seqArray(seqs []int64) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range seqs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s, 10))
	}
	b.WriteByte('}')
	return b.String()
}
