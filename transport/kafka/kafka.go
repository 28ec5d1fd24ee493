package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport"
)

// Transport is the Kafka transport. It is safe for concurrent use.
type Transport struct {
	cfg    Config
	common []kgo.Opt // every client's: brokers, security, timeouts, logging

	producer *kgo.Client // publishes, and carries the admin requests
	admin    *kadm.Client
	topics   topicCache
	// smallTopics are the topics whose max.message.bytes below the headroom was
	// noted (at debug level, once each)
	smallTopics sync.Map

	closed   atomic.Bool
	life     context.Context // ends when Close begins: interrupts provisioning in progress
	end      context.CancelFunc
	mu       sync.Mutex // guards subs
	subs     map[*subscription]struct{}
	subsDone sync.WaitGroup
	errs     []error // offset commits that failed as subscriptions ended
}

var (
	_ transport.Transport         = (*Transport)(nil)
	_ transport.AsyncPublisher    = (*Transport)(nil)
	_ transport.OutgoingPublisher = (*Transport)(nil)
	_ transport.Provisioner       = (*Transport)(nil)
	_ transport.Reader            = (*Transport)(nil)
	_ transport.TopicLister       = (*Transport)(nil)
	_ transport.GroupLagger       = (*Transport)(nil)
	_ transport.MessageLimiter    = (*Transport)(nil)
)

// New connects to the cluster described by cfg and returns the transport. It fails
// within about Config.DialTimeout when no broker answers, a broker accepts the
// connection but never answers, or authentication fails, naming the brokers and the
// likely cause (refused, TLS, SASL).
func New(ctx context.Context, cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	common, err := cfg.clientOptions()
	if err != nil {
		return nil, err
	}
	t := &Transport{cfg: cfg, common: common, subs: map[*subscription]struct{}{}}
	t.life, t.end = context.WithCancel(context.Background())
	t.topics.t = t
	t.producer, err = t.newClient(cfg.producerOptions(t.topics.batchMaxBytes)...)
	if err != nil {
		t.end()
		return nil, err
	}
	if err := t.ping(ctx); err != nil {
		t.producer.Close()
		t.end()
		return nil, err
	}
	t.admin = kadm.NewClient(t.producer)
	return t, nil
}

// newClient makes a franz-go client with the transport's common options, then opts,
// then Config.ClientOptions.
func (t *Transport) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	all := append(append(append([]kgo.Opt{}, t.common...), opts...), t.cfg.ClientOptions...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w: %w", transport.ErrInvalidOption, err)
	}
	return cl, nil
}

// ping asks the cluster for its metadata, within the dial timeout: franz-go connects
// lazily, so without it a cluster that cannot be reached would show only at the first
// Publish.
func (t *Transport) ping(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, t.cfg.DialTimeout)
	defer cancel()
	err := t.producer.Ping(ctx)
	brokers := strings.Join(t.cfg.Brokers, ",")
	if err == nil {
		// Kafka 0.11 (produce version 3) brought the record headers that carry the
		// message id, the idempotent producer and transactions.
		resp, verr := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, t.producer)
		if verr != nil {
			return fmt.Errorf("kafka: asking %s for its API versions: %w", brokers, verr)
		}
		if v, ok := kversion.FromApiVersionsResponse(resp).LookupMaxKeyVersion(int16(kmsg.Produce)); !ok || v < 3 {
			return fmt.Errorf("kafka: the brokers of %s are too old: they speak produce version %d, older than Kafka 0.11 (version 3), which record headers and the idempotent producer need", brokers, v)
		}
		return nil
	}
	hint := ""
	msg := err.Error()
	switch {
	case t.cfg.SASL.Mechanism != "" && (errors.Is(err, kerr.SaslAuthenticationFailed) || strings.Contains(msg, "EOF") ||
		strings.Contains(msg, "SASL") || strings.Contains(msg, "sasl")):
		hint = fmt.Sprintf(" (SASL %s authentication as %q was likely refused: check the user and the password in $%s)",
			t.cfg.SASL.Mechanism, t.cfg.SASL.User, t.cfg.SASL.PasswordEnv)
	case strings.Contains(msg, "x509") || strings.Contains(msg, "tls:"):
		hint = " (TLS failed: check tls_ca and tls_server_name against the brokers' certificates)"
	case !t.cfg.TLS.Enable && strings.Contains(msg, "EOF"):
		hint = " (the broker closed the connection: does it require tls=true or SASL?)"
	case callerDeadlinePassed(parent):
		hint = " (the caller's deadline passed first)"
	case errors.Is(err, context.DeadlineExceeded) && t.cfg.TLS.Enable:
		hint = t.tlsHint(parent)
		if hint == "" {
			hint = fmt.Sprintf(" (no answer within dial_timeout %s: is it a Kafka listener?)", t.cfg.DialTimeout)
		}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		hint = fmt.Sprintf(" (no answer within dial_timeout %s: is it a Kafka listener?)", t.cfg.DialTimeout)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("kafka: connecting to %s: %w", brokers, context.Canceled)
	}
	return fmt.Errorf("kafka: cannot reach any broker of %s%s: %w", brokers, hint, err)
}

// callerDeadlinePassed reports whether ctx has ended or its deadline has passed. It
// reads the clock too: a dial bounded by the same deadline can fail before the
// context's own timer has fired.
func callerDeadlinePassed(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// tlsHint tries a TLS handshake with the first broker, to tell why no broker
// answered: "" when it succeeds, else a hint naming the handshake's error (a
// plaintext listener closes the connection on a TLS hello).
func (t *Transport) tlsHint(ctx context.Context) string {
	tc, err := t.cfg.TLS.load()
	if err != nil {
		return ""
	}
	broker := t.cfg.Brokers[0]
	if tc.ServerName == "" {
		tc.ServerName, _, _ = net.SplitHostPort(broker)
	}
	ctx, cancel := context.WithTimeout(ctx, min(t.cfg.DialTimeout, 5*time.Second))
	defer cancel()
	conn, err := (&tls.Dialer{Config: tc}).DialContext(ctx, "tcp", broker)
	if err == nil {
		_ = conn.Close()
		return ""
	}
	return fmt.Sprintf(" (tls=true, but the TLS handshake with %s failed: %v; a plaintext listener never completes one: does it use TLS?)", broker, err)
}

// Capabilities: consumer groups, order per partition, per-key concurrency, retention
// and persistence, keys choosing partitions.
func (t *Transport) Capabilities() transport.Capabilities {
	return transport.Capabilities{MessagingSystem: "kafka", ConsumerGroups: true, Ordered: true, Concurrency: true,
		Retains: true, Persistent: true, PartitionKeys: true}
}

func (t *Transport) checkOpen() error {
	if t.closed.Load() {
		return fmt.Errorf("kafka: %w", transport.ErrClosed)
	}
	return nil
}

// whileOpen returns ctx, ended also when Close begins, for a call that waits on the
// cluster (provisioning, listing): Close interrupts it instead of waiting out its
// timeout. done releases it.
func (t *Transport) whileOpen(ctx context.Context) (_ context.Context, done func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// orClosed returns err, wrapping transport.ErrClosed as well when the transport was
// closed while the call that failed with err ran: whatever franz-go said then ("client
// closed", a context canceled by whileOpen), the cause is the Close.
func (t *Transport) orClosed(err error) error {
	if err == nil || !t.closed.Load() || errors.Is(err, transport.ErrClosed) {
		return err
	}
	return fmt.Errorf("kafka: %w: %w", transport.ErrClosed, err)
}

// whileOpenDo runs f, a call that reads the cluster, on a context that also ends when
// the transport closes, so that Close interrupts it at once; its error then wraps
// transport.ErrClosed (orClosed).
func whileOpenDo[T any](t *Transport, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	if err := t.checkOpen(); err != nil {
		var zero T
		return zero, err
	}
	ctx, done := t.whileOpen(ctx)
	defer done()
	v, err := f(ctx)
	return v, t.orClosed(err)
}

// Publish sends messages to topic and returns once every one is acknowledged by all
// in-sync replicas, or with the errors of those that failed. A missing topic is created
// first unless provisioning is off; a topic deleted since is created again.
func (t *Transport) Publish(topic string, messages ...*message.Message) error {
	if len(messages) == 0 {
		return nil
	}
	ctx := messages[0].Context()
	err := t.publish(ctx, topic, messages)
	if isUnknownTopic(err) {
		// Deleted since it was provisioned: provision it again, once.
		t.topics.forget(topic)
		err = t.publish(ctx, topic, messages)
	}
	return err
}

func (t *Transport) publish(ctx context.Context, topic string, messages []*message.Message) error {
	if err := t.checkOpen(); err != nil {
		return err
	}
	if err := t.topics.ensure(ctx, topic); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(messages))
	for i, msg := range messages {
		r, err := t.record(topic, msg)
		if err != nil {
			errs[i] = err
			continue
		}
		r.Context = ctx
		wg.Add(1)
		t.producer.Produce(ctx, r, func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	return t.produceError(topic, errors.Join(errs...))
}

// record is the record of msg, or an error wrapping kerr.MessageTooLarge when it is
// larger than MaxMessageBytes; a dead letter (a message carrying
// metadata.DeadLetterReason) may use transport.DeadLetterHeadroom beyond it, less the
// record batch's own header, so that it fits a topic made for it.
func (t *Transport) record(topic string, msg *message.Message) (*kgo.Record, error) {
	r := toRecord(topic, msg)
	limit, what := t.cfg.MaxMessageBytes, "max_message_bytes"
	if _, dead := msg.Metadata[metadata.DeadLetterReason]; dead {
		limit, what = t.cfg.deadLetterMaxBytes(), "max_message_bytes and the dead-letter headroom"
	}
	if n := recordSize(r); n > limit {
		return nil, fmt.Errorf("message %s of about %d bytes exceeds %s (%d bytes): %w", msg.UUID, n, what, limit, kerr.MessageTooLarge)
	}
	return r, nil
}

// produceError is the error Publish returns for err: a message too large (refused by
// record, by the producer or by the broker) wraps transport.ErrMessageTooLarge.
func (t *Transport) produceError(topic string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("kafka: publishing to %q: %w", topic, transport.ErrClosed)
	case errors.Is(err, kerr.MessageTooLarge):
		return fmt.Errorf("kafka: publishing to %q: %w: %w", topic, transport.ErrMessageTooLarge, err)
	default:
		return fmt.Errorf("kafka: publishing to %q: %w", topic, err)
	}
}

func isUnknownTopic(err error) bool {
	return errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID)
}

// PublishAsync queues msg in the producer and returns once it is queued, waiting
// while the producer holds PublishQueue records or PublishQueueBytes bytes; done is
// called from the producer's callback goroutine once the record is stored or failed.
// Records of one key (one partition) are stored in the order queued.
func (t *Transport) PublishAsync(ctx context.Context, topic string, msg *message.Message, done func(error)) {
	if err := t.checkOpen(); err != nil {
		done(err)
		return
	}
	if err := t.topics.ensure(ctx, topic); err != nil {
		done(err)
		return
	}
	r, err := t.record(topic, msg)
	if err != nil {
		done(t.produceError(topic, err))
		return
	}
	r.Context = context.Background() // once queued, the record does not depend on ctx
	t.producer.Produce(ctx, r, func(_ *kgo.Record, err error) {
		if isUnknownTopic(err) {
			t.topics.forget(topic) // the next publish provisions it again
		}
		done(t.produceError(topic, err))
	})
}

// Flush waits until every record queued so far is stored or failed.
func (t *Transport) Flush(ctx context.Context) error {
	if err := t.checkOpen(); err != nil {
		return err
	}
	return t.producer.Flush(ctx)
}

// MessageLimit returns, for a topic provisioned (Provision, Subscribe or Publish),
// its max.message.bytes as read then (any; 0 when unknown) and the largest message
// this transport publishes to it (ours: MaxMessageBytes, or the topic's limit when
// smaller); see transport.MessageLimiter.
func (t *Transport) MessageLimit(topic string) (anyProducer, ours int) {
	ours = t.cfg.MaxMessageBytes
	if v, ok := t.topics.topics.Load(topic); ok {
		anyProducer = int(v.(*topicState).maxMessageBytes.Load())
	}
	if anyProducer > 0 {
		ours = min(ours, anyProducer)
	}
	return anyProducer, ours
}

// Provision creates the topics that are missing (unless provisioning is off) and
// checks that each is as durable as configured; see Config.StrictDurability.
func (t *Transport) Provision(ctx context.Context, topics ...string) error {
	if err := t.checkOpen(); err != nil {
		return err
	}
	ctx, done := t.whileOpen(ctx)
	defer done()
	for _, topic := range topics {
		if err := t.topics.ensure(ctx, topic); err != nil {
			return t.orClosed(err)
		}
	}
	return nil
}

// closeWait bounds how long Close waits for the producer's queue and for
// subscriptions that still have messages in flight.
const closeWait = 10 * time.Second

// Close ends every subscription (their messages in flight finish within their drain,
// at most closeWait, and the groups' positions are committed), then stores what the
// producer still holds, for at most closeWait, fails what is left (each PublishAsync
// done hears it), and disconnects. Offset commits that failed while subscriptions
// ended are part of the error. Close is idempotent.
func (t *Transport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	t.end()
	t.mu.Lock()
	subs := make([]*subscription, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	for _, s := range subs {
		s.stop()
	}
	t.subsDone.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	flushErr := t.producer.Flush(ctx)
	cancel()
	t.producer.Close() // fails whatever Flush did not store
	t.mu.Lock()
	defer t.mu.Unlock()
	errs := t.errs
	if flushErr != nil {
		errs = append(errs, fmt.Errorf("kafka: records still queued at Close were failed: %w", flushErr))
	}
	return errors.Join(errs...)
}

// subscriptionEnded records the end of s and, when its last commit failed, why.
func (t *Transport) subscriptionEnded(s *subscription, err error) {
	t.mu.Lock()
	delete(t.subs, s)
	if err != nil {
		t.errs = append(t.errs, err)
	}
	t.mu.Unlock()
	t.subsDone.Done()
}
