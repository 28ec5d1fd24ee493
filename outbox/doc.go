// Package outbox is a transactional outbox and inbox on PostgreSQL for pubsubkit.
//
// Publish writes a message in the caller's *sql.Tx, beside the business write: both
// commit or neither does. (*Outbox).Run relays committed messages to the client's
// transport and deletes each row once the transport acknowledged it. Subscribe runs a
// handler inside a transaction that also records the message for the group, so a
// redelivered message that was already handled is acked without calling the handler.
// The record's key is unique for what the message is: a CloudEvent's ce_source and
// ce_id (CloudEvents ids are unique per source only), any other message's id.
//
// The package takes any *sql.DB of PostgreSQL. With pgx's stdlib driver
// (github.com/jackc/pgx/v5/stdlib) Run listens for the NOTIFY the outbox table's
// trigger sends at commit and relays at once; with another driver it polls every
// poll interval (WithPollInterval). OUTBOX.md at the module root holds the schema,
// the guarantees and the measured costs.
package outbox
