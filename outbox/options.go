package outbox

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/pubsubkit/pubsub"
)

// Option configures an Outbox in New.
type Option func(*options)

type options struct {
	schema        string
	prefix        string
	pollInterval  time.Duration
	batchSize     int
	retention     time.Duration
	pruneInterval time.Duration
	logger        *slog.Logger
	listen        bool
	errs          []string
}

// Defaults of the options.
const (
	DefaultSchema         = "public"
	DefaultTablePrefix    = "pubsub_"
	DefaultPollInterval   = time.Second
	DefaultBatchSize      = 500
	DefaultInboxRetention = 7 * 24 * time.Hour
)

func newOptions(opts []Option) (options, error) {
	o := options{
		schema:        DefaultSchema,
		prefix:        DefaultTablePrefix,
		pollInterval:  DefaultPollInterval,
		batchSize:     DefaultBatchSize,
		retention:     DefaultInboxRetention,
		pruneInterval: time.Hour,
		logger:        slog.New(slog.DiscardHandler),
		listen:        true,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if !identifier.MatchString(o.schema) {
		o.errs = append(o.errs, fmt.Sprintf("schema %q is not a lowercase SQL identifier ([a-z_][a-z0-9_]*)", o.schema))
	}
	if o.prefix != "" && !identifier.MatchString(o.prefix) {
		o.errs = append(o.errs, fmt.Sprintf("table prefix %q is not a lowercase SQL identifier ([a-z_][a-z0-9_]*)", o.prefix))
	}
	if len(o.prefix) > 40 {
		o.errs = append(o.errs, fmt.Sprintf("table prefix %q is longer than 40 characters", o.prefix))
	}
	if len(o.errs) > 0 {
		return o, fmt.Errorf("outbox: %w: %s", pubsub.ErrInvalidOption, o.errs[0])
	}
	return o, nil
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func (o *options) bad(format string, args ...any) {
	o.errs = append(o.errs, fmt.Sprintf(format, args...))
}

// WithSchema sets the PostgreSQL schema holding the tables; it must exist. The
// default is "public".
func WithSchema(name string) Option { return func(o *options) { o.schema = name } }

// WithTablePrefix sets the prefix of the table names; the default is "pubsub_"
// (pubsub_outbox, pubsub_inbox, pubsub_outbox_schema).
func WithTablePrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithPollInterval sets how often Run looks for committed messages without being
// woken by a NOTIFY; the default is one second.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.bad("poll interval %s is not positive", d)
		}
		o.pollInterval = d
	}
}

// WithBatchSize sets how many rows of one slot Run reads, publishes and deletes in
// one transaction; the default is 500.
func WithBatchSize(n int) Option {
	return func(o *options) {
		if n < 1 || n > 100_000 {
			o.bad("batch size %d is outside 1..100000", n)
		}
		o.batchSize = n
	}
}

// WithInboxRetention sets how long an inbox record is kept after its message was
// handled; Run deletes older ones every hour. A message redelivered after that is
// handled again. The default is seven days.
func WithInboxRetention(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.bad("inbox retention %s is not positive", d)
		}
		o.retention = d
	}
}

// WithPruneInterval sets how often Run prunes the inbox; the default is one hour.
func WithPruneInterval(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.bad("prune interval %s is not positive", d)
		}
		o.pruneInterval = d
	}
}

// WithLogger sets the logger Run reports database errors and retries to; the default
// discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.bad("nil logger")
		}
		o.logger = l
	}
}

// WithoutListen makes Run poll only, even on pgx's driver.
func WithoutListen() Option { return func(o *options) { o.listen = false } }
