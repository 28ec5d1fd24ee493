package outbox

// queries are the statements of one set of tables.
type queries struct {
	insert, insertLocked string
	busySlots            string
	lockSlot             string
	readSlot             string
	deleteRows           string
	markHandled          string
	legacyHandled        string // a CloudEvent recorded under its id alone before the version 2 migration
	prune                string
}

func newQueries(t tables) queries {
	const columns = ` (slot, id, topic, key, metadata, payload) `
	return queries{
		insert: `INSERT INTO ` + t.outbox + columns + `VALUES ($1, $2, $3, $4, $5::jsonb, $6)`,
		// The lock is taken before the row's seq is drawn: of two transactions
		// publishing to one key, the later one draws its seq after the earlier one
		// committed, so seq order is commit order for each key.
		insertLocked: `INSERT INTO ` + t.outbox + columns +
			`SELECT $1, $2, $3, $4, $5::jsonb, $6 FROM (SELECT pg_advisory_xact_lock(hashtext('` + t.channel + `'), hashtext($3 || chr(1) || $4))) AS l`,
		busySlots:   `SELECT DISTINCT slot FROM (SELECT slot FROM ` + t.outbox + ` ORDER BY seq LIMIT 1000) AS s`,
		lockSlot:    `SELECT pg_try_advisory_xact_lock(hashtext('` + t.channel + `.slot'), $1)`,
		readSlot:    `SELECT seq, id, topic, metadata, payload FROM ` + t.outbox + ` WHERE slot = $1 ORDER BY seq LIMIT $2`,
		deleteRows:  `DELETE FROM ` + t.outbox + ` WHERE seq = ANY($1::bigint[])`,
		markHandled: `INSERT INTO ` + t.inbox + ` (group_name, source, message_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		legacyHandled: `SELECT EXISTS (SELECT 1 FROM ` + t.inbox +
			` WHERE group_name = $1 AND source = '' AND message_id = $2 AND handled_at < $3)`,
		prune: `DELETE FROM ` + t.inbox + ` WHERE ctid = ANY(ARRAY(SELECT ctid FROM ` + t.inbox +
			` WHERE handled_at < now() - $1::float8 * interval '1 second' LIMIT 10000))`,
	}
}
