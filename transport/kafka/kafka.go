package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
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

	closed atomic.Bool
	mu     sync.Mutex                    // guards subs and orders Close after SubscribeGroup
	subs   map[string]*wkafka.Subscriber // by group
	fwd    sync.WaitGroup                // forwarding goroutines of SubscribeGroup
	stop   chan struct{}                 // closed by Close
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
		cfg:    cfg,
		sarama: sc,
		log:    cfg.Logger.With("transport", "kafka"),
		subs:   map[string]*wkafka.Subscriber{},
		stop:   make(chan struct{}),
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
		}, watermill.NewSlogLoggerWithLevelMapping(t.log.With("group", group),
			// watermill-kafka logs every subscription start and stop at Info.
			map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
		if err != nil {
			return nil, fmt.Errorf("kafka: subscriber for group %q: %w", group, err)
		}
		t.subs[group] = sub
	}
	in, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: subscribe %q in group %q: %w", topic, group, err)
	}
	out := make(chan *message.Message)
	t.fwd.Add(1)
	go t.forward(ctx, in, out)
	return out, nil
}

// forward hands on watermill-kafka's messages with their position in the context. It
// ends when watermill-kafka closes in, which it does when ctx ends or on Close.
func (t *Transport) forward(ctx context.Context, in <-chan *message.Message, out chan<- *message.Message) {
	defer t.fwd.Done()
	defer close(out)
	for msg := range in {
		mctx := msg.Context()
		p, _ := wkafka.MessagePartitionFromCtx(mctx)
		o, _ := wkafka.MessagePartitionOffsetFromCtx(mctx)
		msg.SetContext(transport.WithPosition(mctx, transport.Position{Partition: p, Offset: o}))
		select {
		case out <- msg:
		case <-ctx.Done():
			msg.Nack()
		case <-t.stop:
			msg.Nack()
		}
	}
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
	close(t.stop)
	subs := t.subs
	t.mu.Unlock()

	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close())
	}
	t.fwd.Wait()
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
