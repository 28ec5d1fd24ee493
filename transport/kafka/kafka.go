package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/transport"
)

// Transport is the Kafka transport. It is safe for concurrent use.
type Transport struct {
	cfg    Config
	sarama *sarama.Config
	log    *slog.Logger

	admin    sarama.ClusterAdmin // owns the metadata client
	client   sarama.Client
	producer *producer
	topics   topicCache

	closed   atomic.Bool
	mu       sync.Mutex                    // guards subs and orders Close after SubscribeGroup
	subs     map[string]*wkafka.Subscriber // by group
	fwd      sync.WaitGroup                // forwarding goroutines of SubscribeGroup
	stopping chan struct{}                 // closed when Close begins
}

var (
	_ transport.Transport   = (*Transport)(nil)
	_ transport.Provisioner = (*Transport)(nil)
	_ transport.Reader      = (*Transport)(nil)
)

// New connects to the cluster described by cfg and returns the transport. It fails,
// within about Config.DialTimeout per broker, when no broker answers, naming the
// brokers and the cause (refused, TLS, authentication).
func New(ctx context.Context, cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sc, err := cfg.sarama()
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:      cfg,
		sarama:   sc,
		log:      cfg.Logger.With("transport", "kafka"),
		subs:     map[string]*wkafka.Subscriber{},
		stopping: make(chan struct{}),
	}
	t.client, err = connect(ctx, cfg, sc)
	if err != nil {
		return nil, err
	}
	t.admin, err = sarama.NewClusterAdminFromClient(t.client)
	if err != nil {
		t.client.Close()
		return nil, fmt.Errorf("kafka: cluster admin: %w", err)
	}
	t.producer, err = newProducer(cfg, sc)
	if err != nil {
		t.admin.Close()
		return nil, err
	}
	t.topics.t = t
	return t, nil
}

// connect opens the metadata client, giving up when ctx ends. sarama's own error for
// an unreachable cluster ("run out of available brokers") hides the cause; the one
// returned here names the brokers and, for the usual causes, what to check.
func connect(ctx context.Context, cfg Config, sc *sarama.Config) (sarama.Client, error) {
	type result struct {
		c   sarama.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := sarama.NewClient(cfg.Brokers, sc)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, connectError(cfg, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("kafka: connecting to %s: %w", strings.Join(cfg.Brokers, ","), ctx.Err())
	}
}

func connectError(cfg Config, err error) error {
	hint := ""
	msg := err.Error()
	switch {
	case cfg.SASL.Mechanism != "" && (errors.Is(err, sarama.ErrSASLAuthenticationFailed) ||
		strings.Contains(msg, "EOF") || strings.Contains(msg, "SASL")):
		hint = fmt.Sprintf(" (SASL %s authentication as %q was likely refused: check the user and the password in $%s)",
			cfg.SASL.Mechanism, cfg.SASL.User, cfg.SASL.PasswordEnv)
	case strings.Contains(msg, "x509") || strings.Contains(msg, "tls:"):
		hint = " (TLS failed: check tls_ca and tls_server_name against the brokers' certificates)"
	case !cfg.TLS.Enable && strings.Contains(msg, "EOF"):
		hint = " (the broker closed the connection: does it require tls=true or SASL?)"
	}
	return fmt.Errorf("kafka: cannot reach any broker of %s%s: %w", strings.Join(cfg.Brokers, ","), hint, err)
}

// Capabilities: consumer groups, order per partition, retention and persistence, keys
// choosing partitions.
func (t *Transport) Capabilities() transport.Capabilities {
	return transport.Capabilities{ConsumerGroups: true, Ordered: true, Retains: true, Persistent: true, PartitionKeys: true}
}

// Publish sends messages to topic and returns once every one is acknowledged by all
// in-sync replicas, or the first error. Concurrent calls share produce requests. A
// missing topic is created first unless provisioning is off.
func (t *Transport) Publish(topic string, messages ...*message.Message) error {
	if len(messages) == 0 {
		return nil
	}
	ctx := messages[0].Context()
	if err := t.checkOpen(); err != nil {
		return err
	}
	if err := t.topics.ensure(ctx, topic); err != nil {
		return err
	}
	return t.producer.publish(ctx, topic, messages)
}

// SubscribeGroup consumes topic in group through watermill-kafka's subscriber. An
// offset is committed only after its message is acked; a new group starts at the
// oldest message; a nack redelivers the message after Config.NackDelay, ahead of the
// rest of its partition. Each delivered message's context carries its
// transport.Position.
func (t *Transport) SubscribeGroup(ctx context.Context, topic, group string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	if _, err := t.SubscribeGroupInto(ctx, topic, group, out); err != nil {
		return nil, err
	}
	return out, nil
}

// SubscribeGroupInto is SubscribeGroup delivering into out (transport.Forwarder).
func (t *Transport) SubscribeGroupInto(ctx context.Context, topic, group string, out chan<- *message.Message) (<-chan struct{}, error) {
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	if err := t.topics.ensure(ctx, topic); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, transport.ErrClosed)
	}
	sub, ok := t.subs[group]
	if !ok {
		var err error
		sub, err = wkafka.NewSubscriber(wkafka.SubscriberConfig{
			Brokers:               t.cfg.Brokers,
			Unmarshaler:           unmarshaler{},
			OverwriteSaramaConfig: t.sarama,
			ConsumerGroup:         group,
			NackResendSleep:       t.cfg.NackDelay,
			ReconnectRetrySleep:   t.cfg.RetryBackoff,
		}, transport.WatermillLogger(t.log.With("group", group)))
		if err != nil {
			return nil, fmt.Errorf("kafka: subscriber for group %q: %w", group, err)
		}
		t.subs[group] = sub
	}
	// watermill-kafka drops an ack that arrives after its subscription context ended,
	// so a message whose handler finishes during a graceful drain would be handled
	// again after the restart. It gets a context of its own, ended only once the
	// messages handed on have been acked or nacked (see forward).
	inner, stopInner := context.WithCancel(context.WithoutCancel(ctx))
	in, err := sub.Subscribe(inner, topic)
	if err != nil {
		stopInner()
		return nil, fmt.Errorf("kafka: subscribe %q in group %q: %w", topic, group, err)
	}
	done := make(chan struct{})
	t.fwd.Add(1)
	go func() {
		defer close(done)
		t.forward(ctx, group, stopInner, in, out)
	}()
	return done, nil
}

// forward hands on watermill-kafka's messages with their position in the context, and
// a context that also ends when ctx does. When ctx ends (or Close begins) it closes out
// at once, but keeps watermill-kafka's subscription (stopInner) until watermill-kafka
// has taken in the ack or nack of every message handed on, so that the acks of
// handlers finishing during a drain are committed; messages that arrive meanwhile are
// nacked. The wait is bounded by closeGrace once Close has begun.
func (t *Transport) forward(ctx context.Context, group string, stopInner context.CancelFunc, in <-chan *message.Message, out chan<- *message.Message) {
	defer t.fwd.Done()
	var handed []handedMsg
	for {
		select {
		case msg, ok := <-in:
			if !ok { // watermill-kafka stopped
				close(out)
				stopInner()
				return
			}
			mctx := msg.Context()
			p, _ := wkafka.MessagePartitionFromCtx(mctx)
			o, _ := wkafka.MessagePartitionOffsetFromCtx(mctx)
			msg.SetContext(endsWith(transport.WithPosition(mctx, transport.Position{Partition: p, Offset: o}), ctx))
			select {
			case out <- msg:
				handed = append(unsettled(handed), handedMsg{msg, mctx.Done()})
			case <-ctx.Done():
				msg.Nack()
			case <-t.stopping:
				msg.Nack()
			}
		case <-ctx.Done():
			t.wind(group, out, stopInner, in, handed)
			return
		case <-t.stopping:
			t.wind(group, out, stopInner, in, handed)
			return
		}
	}
}

// handedMsg is a message handed on, and the end of watermill-kafka's hold on it: its
// original context ends once watermill-kafka has marked it (after an ack) or given it
// up.
type handedMsg struct {
	msg  *message.Message
	done <-chan struct{}
}

// closeGrace bounds how long Close waits for the acks of messages handed on.
const closeGrace = 5 * time.Second

// wind ends a subscription: out closes, messages still arriving are nacked, and, for
// a consumer group, watermill-kafka's subscription ends only once it has taken in
// every handed message's outcome, for at most Config.AckGrace (closeGrace once Close
// has begun). A subscription without a group commits nothing and ends at once.
func (t *Transport) wind(group string, out chan<- *message.Message, stopInner context.CancelFunc, in <-chan *message.Message, handed []handedMsg) {
	close(out)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for msg := range in {
			msg.Nack()
		}
	}()
	if group != "" {
		grace := time.NewTimer(t.cfg.AckGrace)
		defer grace.Stop()
		stopping := t.stopping
	wait:
		for _, h := range handed {
			for {
				select {
				case <-h.done: // marked, or given up by watermill-kafka
				case <-h.msg.Nacked(): // will be delivered again: nothing to commit
				case <-grace.C:
					break wait // acks after this are dropped: those messages come again
				case <-stopping:
					stopping = nil
					grace.Reset(min(closeGrace, t.cfg.AckGrace))
					continue
				}
				break
			}
		}
	}
	stopInner()
	<-drained
}

// unsettled drops the messages watermill-kafka is done with; at most one message per
// partition is ever in flight, so the list stays short.
func unsettled(hs []handedMsg) []handedMsg {
	kept := hs[:0]
	for _, h := range hs {
		select {
		case <-h.done:
		case <-h.msg.Nacked():
		default:
			kept = append(kept, h)
		}
	}
	return kept
}

// endsWith returns a context with ctx's values that also ends when also does.
func endsWith(ctx, also context.Context) context.Context {
	merged, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(also, cancel)
	context.AfterFunc(merged, func() { stop() }) // unregister once the message is done
	return merged
}

// Provision creates the topics that are missing (unless provisioning is off) and
// checks that each is as durable as configured; see Config.StrictDurability.
func (t *Transport) Provision(ctx context.Context, topics ...string) error {
	if err := t.checkOpen(); err != nil {
		return err
	}
	for _, topic := range topics {
		if err := t.topics.ensure(ctx, topic); err != nil {
			return err
		}
	}
	return nil
}

func (t *Transport) checkOpen() error {
	if t.closed.Load() {
		return fmt.Errorf("kafka: %w", transport.ErrClosed)
	}
	return nil
}

// Close stops every subscription and waits for their channels to close, then flushes
// the producer (every Publish in progress returns) and disconnects. It is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed.Swap(true) {
		t.mu.Unlock()
		return nil
	}
	close(t.stopping)
	subs := t.subs
	t.mu.Unlock()

	// The subscriptions wind down first, so that acks given before Close are committed
	// (watermill-kafka's own Close drops them); then the subscribers close.
	t.fwd.Wait()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close())
	}
	errs = append(errs, t.producer.close())
	if err := t.admin.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SaramaConfig returns a copy of the sarama configuration the transport uses, for
// tools that talk to the same cluster the same way (admin scripts, benchmarks).
func (t *Transport) SaramaConfig() *sarama.Config {
	c := *t.sarama
	return &c
}

// MessagingSystem names this transport in telemetry (messaging.system).
func (t *Transport) MessagingSystem() string { return "kafka" }
