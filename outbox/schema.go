package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SchemaVersion is the version of the tables this release writes and reads. New
// records it in the <prefix>outbox_schema table; a later release that changes the
// tables migrates from the version it finds there.
//
// Version 2 keys the inbox on (group_name, source, message_id): source is a
// CloudEvent's ce_source ("" for other messages), because CloudEvents ids are unique
// per source only. Tables of version 1 are migrated in New; their rows keep source "".
const SchemaVersion = 2

// Slots is the number of relay slots. A message's slot is a hash of its topic and key
// (of its id when it has no key); one relay at a time holds a slot, so the messages
// of a key are relayed by one relay, in order. It is part of the schema: changing it
// is a migration.
const Slots = 16

// tables holds the quoted names of the outbox's objects.
type tables struct {
	schema, outbox, inbox, version, notify, trigger string
	channel                                         string // the NOTIFY channel, also naming the advisory locks
}

func newTables(o options) tables {
	q := func(name string) string { return `"` + o.schema + `"."` + o.prefix + name + `"` }
	return tables{
		schema:  `"` + o.schema + `"`,
		outbox:  q("outbox"),
		inbox:   q("inbox"),
		version: q("outbox_schema"),
		notify:  q("outbox_notify"),
		trigger: `"` + o.prefix + `outbox_notify"`,
		channel: o.schema + "." + o.prefix + "outbox",
	}
}

// ddl creates the tables of schema version 1 when they are missing and migrates them
// to SchemaVersion, one statement at a time (drivers that prepare every statement
// take one command only). Each statement may run on tables of any earlier version.
var ddl = []string{
	`CREATE TABLE IF NOT EXISTS {version} (
	version    integer     NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`,
	`CREATE TABLE IF NOT EXISTS {outbox} (
	seq        bigserial   PRIMARY KEY,
	slot       smallint    NOT NULL,
	id         text        NOT NULL,
	topic      text        NOT NULL,
	key        text        NOT NULL,
	metadata   jsonb       NOT NULL,
	payload    bytea       NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
)`,
	`CREATE INDEX IF NOT EXISTS {prefix}outbox_slot_seq ON {outbox} (slot, seq)`,
	`CREATE TABLE IF NOT EXISTS {inbox} (
	group_name text        NOT NULL,
	message_id text        NOT NULL,
	handled_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (group_name, message_id)
)`,
	`CREATE INDEX IF NOT EXISTS {prefix}inbox_handled_at ON {inbox} (handled_at)`,
	// version 2: the inbox keys a CloudEvent on its source and id
	`ALTER TABLE {inbox} ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT ''`,
	`ALTER TABLE {inbox} DROP CONSTRAINT IF EXISTS {prefix}inbox_pkey`,
	`ALTER TABLE {inbox} ADD CONSTRAINT {prefix}inbox_pkey PRIMARY KEY (group_name, source, message_id)`,
	`CREATE OR REPLACE FUNCTION {notify}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('{channel}', '');
	RETURN NULL;
END $$`,
	`DROP TRIGGER IF EXISTS {trigger} ON {outbox}`,
	`CREATE TRIGGER {trigger} AFTER INSERT ON {outbox} FOR EACH STATEMENT EXECUTE FUNCTION {notify}()`,
}

// migrate creates the tables when missing, migrates tables of an earlier version
// and checks the recorded schema version. It runs under a transaction-scoped advisory
// lock so that processes starting at once do not create the tables twice.
func (t tables) migrate(ctx context.Context, db *sql.DB, prefix string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: creating the tables: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, t.channel+".migrate"); err != nil {
		return fmt.Errorf("outbox: creating the tables: %w", err)
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, t.version).Scan(&exists); err != nil {
		return fmt.Errorf("outbox: reading the schema version: %w", err)
	}
	if exists {
		var v int
		err := tx.QueryRowContext(ctx, `SELECT max(version) FROM `+t.version).Scan(&v)
		if err != nil {
			return fmt.Errorf("outbox: reading the schema version of %s: %w", t.version, err)
		}
		if v > SchemaVersion {
			return fmt.Errorf("outbox: %s is at schema version %d; this release knows version %d only", t.version, v, SchemaVersion)
		}
		if v == SchemaVersion {
			return tx.Commit()
		}
	}
	r := strings.NewReplacer("{version}", t.version, "{outbox}", t.outbox, "{inbox}", t.inbox,
		"{notify}", t.notify, "{trigger}", t.trigger, "{channel}", t.channel, "{prefix}", prefix)
	for _, stmt := range ddl {
		if _, err := tx.ExecContext(ctx, r.Replace(stmt)); err != nil {
			return fmt.Errorf("outbox: creating the tables: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+t.version+` (version) VALUES ($1)`, SchemaVersion); err != nil {
		return fmt.Errorf("outbox: recording the schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: creating the tables: %w", err)
	}
	return nil
}

// legacyInbox returns when the inbox was migrated from schema version 1, whose rows
// recorded a CloudEvent under its id alone (source ""); the zero time when the tables
// were made at version 2 or later and hold no such rows.
func (t tables) legacyInbox(ctx context.Context, db *sql.DB) (time.Time, error) {
	var migrated sql.NullTime
	err := db.QueryRowContext(ctx, `SELECT min(applied_at) FILTER (WHERE version = 2) FROM `+t.version+
		` HAVING bool_or(version = 1)`).Scan(&migrated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("outbox: reading the schema history of %s: %w", t.version, err)
	}
	return migrated.Time, nil
}
