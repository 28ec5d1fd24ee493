package outbox

import (
	"context"
	"database/sql/driver"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgxConn is what pgx's stdlib driver connection offers: its *pgx.Conn.
type pgxConn interface{ Conn() *pgx.Conn }

// listen LISTENs on the outbox's channel on a connection of its own and signals wake
// at each notification, until ctx is done. On a driver other than pgx's stdlib it
// returns at once, and Run polls. A lost connection is replaced after a second.
func (o *Outbox) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		supported, err := o.listenOnce(ctx, wake)
		if !supported {
			o.opts.logger.Debug("outbox: the driver is not pgx's stdlib; polling only", "interval", o.opts.pollInterval)
			return
		}
		if ctx.Err() != nil {
			return
		}
		o.opts.logger.Warn("outbox: listening for commits failed; polling until it is back", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// listenOnce listens on one connection until it fails or ctx is done. The connection
// is discarded afterwards, never returned to the pool still listening.
func (o *Outbox) listenOnce(ctx context.Context, wake chan<- struct{}) (supported bool, err error) {
	conn, err := o.db.Conn(ctx)
	if err != nil {
		return true, err
	}
	defer conn.Close()
	supported = true
	err = conn.Raw(func(dc any) error {
		pc, ok := dc.(pgxConn)
		if !ok {
			supported = false
			return nil
		}
		c := pc.Conn()
		if _, err := c.Exec(ctx, `LISTEN "`+o.t.channel+`"`); err != nil {
			return driver.ErrBadConn
		}
		signal(wake) // commits made before LISTEN took effect
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				o.opts.logger.Debug("outbox: stopped listening", "error", err)
				return driver.ErrBadConn
			}
			signal(wake)
		}
	})
	return supported, err
}

// signal wakes the relay without blocking; one pending wake is enough.
func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
