package outbox_test

import (
	"context"
	"database/sql"
	"strconv"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/outbox"
)

// cloudEvent is a binary-mode CloudEvent with id and source, as another service
// writes one.
func cloudEvent(id, source string, n int) *message.Message {
	m := message.NewMessage(watermillID(), []byte(`{"customer":"ada","n":`+strconv.Itoa(n)+`}`))
	metadata.SetCloudEvent(m.Metadata, id, source, "shop.order")
	m.Metadata.Set(metadata.ContentType, "application/json")
	return m
}

var (
	idMu sync.Mutex
	idN  int
)

func watermillID() string {
	idMu.Lock()
	defer idMu.Unlock()
	idN++
	return "wm-" + strconv.Itoa(idN)
}

// handledBy subscribes a handler to orders in group billing through the inbox and
// returns the events it handled, as "source/id".
func handledBy(t *testing.T, o *outbox.Outbox) func() map[string]int {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	err := outbox.Subscribe(o, orders, "billing", func(_ context.Context, _ *sql.Tx, m *pubsub.Message[order]) error {
		mu.Lock()
		seen[m.Metadata[metadata.CloudEventsSource]+"/"+m.ID]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

// TestInboxKeysCloudEventsBySourceAndID: two CloudEvents with ce_id "1" from two
// sources are both handled; a redelivery of one of them is acked as a duplicate.
func TestInboxKeysCloudEventsBySourceAndID(t *testing.T) {
	db, _ := newDB(t)
	c, o := start(t, db)
	seen := handledBy(t, o)
	runAll(t, c)
	ctx := context.Background()
	eu, us := cloudEvent("1", "//shop-eu/orders", 1), cloudEvent("1", "//shop-us/orders", 2)
	for _, m := range []*message.Message{eu, us, eu.Copy()} {
		if err := c.PublishMessage(ctx, orders.Name(), m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both events handled and the redelivery acked", func() bool {
		return len(seen()) == 2 && o.Stats().Duplicates == 1
	})
	if got := seen(); got["//shop-eu/orders/1"] != 1 || got["//shop-us/orders/1"] != 1 {
		t.Fatalf("handled %v; want each source's event 1 once", got)
	}
}

// TestInboxMigratesFromVersion1: tables of schema version 1, with an inbox row for
// CloudEvent id "7" handled before the upgrade, are migrated by New. The event
// redelivered after the upgrade is still a duplicate; events with one id from two
// sources are both handled from then on.
func TestInboxMigratesFromVersion1(t *testing.T) {
	db, _ := newDB(t)
	for _, stmt := range []string{
		`CREATE TABLE pubsub_outbox_schema (version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO pubsub_outbox_schema (version, applied_at) VALUES (1, now() - interval '1 day')`,
		`CREATE TABLE pubsub_inbox (group_name text NOT NULL, message_id text NOT NULL,
			handled_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (group_name, message_id))`,
		`INSERT INTO pubsub_inbox (group_name, message_id, handled_at) VALUES ('billing', '7', now() - interval '1 minute')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	c, o := start(t, db)
	var v int
	if err := db.QueryRow(`SELECT max(version) FROM pubsub_outbox_schema`).Scan(&v); err != nil || v != outbox.SchemaVersion {
		t.Fatalf("schema version %d (%v) after New, want %d", v, err, outbox.SchemaVersion)
	}
	seen := handledBy(t, o)
	runAll(t, c)
	ctx := context.Background()
	for _, m := range []*message.Message{cloudEvent("7", "//shop-eu/orders", 7), cloudEvent("8", "//shop-eu/orders", 8),
		cloudEvent("8", "//shop-us/orders", 8)} {
		if err := c.PublishMessage(ctx, orders.Name(), m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two events handled, the one handled before the upgrade acked", func() bool {
		return len(seen()) == 2 && o.Stats().Duplicates == 1
	})
	if got := seen(); got["//shop-eu/orders/8"] != 1 || got["//shop-us/orders/8"] != 1 || got["//shop-eu/orders/7"] != 0 {
		t.Fatalf("handled %v; want event 8 of each source once and event 7 (handled before the upgrade) not again", got)
	}
}
