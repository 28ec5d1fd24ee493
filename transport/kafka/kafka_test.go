package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/internal/testsuite"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

type order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// produceLog records what the brokers see in produce requests.
type produceLog struct {
	mu       sync.Mutex
	acks     map[int16]int
	pids     map[int64]int // producer id of each record batch; -1 is not idempotent
	headers  map[string]bool
	requests int
}

// observeProduce installs an observer of every produce request on the fake cluster.
func observeProduce(t *testing.T, cluster *kafkatest.Cluster) *produceLog {
	fake := cluster.RequireFake(t)
	log := &produceLog{acks: map[int16]int{}, pids: map[int64]int{}, headers: map[string]bool{}}
	fake.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		r := req.(*kmsg.ProduceRequest)
		log.mu.Lock()
		defer log.mu.Unlock()
		log.requests++
		log.acks[r.Acks]++
		for _, tp := range r.Topics {
			for _, p := range tp.Partitions {
				var batch kmsg.RecordBatch
				if err := batch.ReadFrom(p.Records); err != nil {
					continue
				}
				log.pids[batch.ProducerID]++
				for _, rec := range readRecords(batch) {
					for _, h := range rec.Headers {
						log.headers[h.Key] = true
					}
				}
			}
		}
		return nil, nil, false
	})
	return log
}

func readRecords(b kmsg.RecordBatch) []kmsg.Record {
	var recs []kmsg.Record
	buf := b.Records
	for range b.NumRecords {
		var r kmsg.Record
		n, err := readRecord(buf, &r)
		if err != nil {
			break
		}
		recs = append(recs, r)
		buf = buf[n:]
	}
	return recs
}

// readRecord decodes one length-prefixed record; kmsg reads a record from exactly its
// bytes.
func readRecord(buf []byte, r *kmsg.Record) (int, error) {
	length, n := varint(buf)
	if n <= 0 || int(length) > len(buf)-n {
		return 0, errors.New("short record")
	}
	end := n + int(length)
	return end, r.ReadFrom(buf[:end])
}

func varint(buf []byte) (int64, int) {
	var ux uint64
	for i, b := range buf {
		if i == 10 {
			return 0, -1
		}
		ux |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return int64(ux>>1) ^ -int64(ux&1), i + 1
		}
	}
	return 0, 0
}

// TestDurableRoundTrip is what an outside program checks: typed messages round-trip
// through kafka:// in two groups, and every produce request the brokers receive asks
// for acks=all from an idempotent producer, with the metadata as headers.
func TestDurableRoundTrip(t *testing.T) {
	cluster := kafkatest.New(t)
	log := observeProduce(t, cluster)
	ctx := context.Background()
	h := pubsubtest.NewOn(t, newTransport(t, cluster, kafka.Config{}))
	c := h.Client
	topic := pubsub.NewTopic[order](kafkatest.Topic("orders"), pubsub.WithKey(func(o order) string { return o.ID }))
	got := map[string]chan order{"billing": make(chan order, 10), "shipping": make(chan order, 10)}
	for group, ch := range got {
		if err := pubsub.Subscribe(c, topic, group, func(_ context.Context, m *pubsub.Message[order]) error {
			if m.CorrelationID != "conv-1" || m.Key != m.Payload.ID {
				t.Errorf("%s: correlation %q key %q for order %s", group, m.CorrelationID, m.Key, m.Payload.ID)
			}
			ch <- m.Payload
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if err := pubsub.Publish(ctx, c, topic, order{ID: string(rune('a' + i)), Amount: i}, pubsub.WithCorrelationID("conv-1")); err != nil {
			t.Fatal(err)
		}
	}
	for group, ch := range got {
		for range 5 {
			select {
			case <-ch:
			case <-time.After(h.Timeout):
				t.Fatalf("group %s did not get every order", group)
			}
		}
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	if log.requests == 0 {
		t.Fatal("saw no produce request")
	}
	for acks, n := range log.acks {
		if acks != -1 {
			t.Errorf("%d produce requests with acks=%d, want every one acks=all (-1)", n, acks)
		}
	}
	for pid, n := range log.pids {
		if pid < 0 {
			t.Errorf("%d record batches without a producer id: the producer is not idempotent", n)
		}
	}
	for _, h := range []string{metadata.CorrelationID, metadata.Key, metadata.ContentType, "_watermill_message_uuid"} {
		if !log.headers[h] {
			t.Errorf("no record carried the header %q (saw %v)", h, log.headers)
		}
	}
}

// admin opens a sarama cluster admin on cluster.
func admin(t *testing.T, cluster *kafkatest.Cluster) sarama.ClusterAdmin {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	a, err := sarama.NewClusterAdmin(cluster.Addrs, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func describe(t *testing.T, a sarama.ClusterAdmin, topic string) (partitions, rf int, minISR string) {
	t.Helper()
	metas, err := a.DescribeTopics([]string{topic})
	if err != nil || len(metas) != 1 || metas[0].Err != sarama.ErrNoError {
		t.Fatalf("describe %q: %v %+v", topic, err, metas)
	}
	partitions = len(metas[0].Partitions)
	rf = len(metas[0].Partitions[0].Replicas)
	entries, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"min.insync.replicas"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name == "min.insync.replicas" {
			minISR = e.Value
		}
	}
	return partitions, rf, minISR
}

// TestSubscribeProvisionsTopicAndDeadLetterTopic: Subscribe creates the topic and its
// dead-letter topic with the configured partitions, replication factor and
// min.insync.replicas.
func TestSubscribeProvisionsTopicAndDeadLetterTopic(t *testing.T) {
	cluster := kafkatest.New(t)
	c, err := pubsub.Open(context.Background(), cluster.URL("partitions=4&replication_factor=3&min_insync_replicas=2"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := pubsub.NewTopic[order](kafkatest.Topic("provisioned"))
	if err := pubsub.Subscribe(c, topic, "billing", func(context.Context, *pubsub.Message[order]) error { return nil }); err != nil {
		t.Fatal(err)
	}
	a := admin(t, cluster)
	for _, name := range []string{topic.Name(), pubsub.DeadLetterTopicName(topic.Name(), "billing")} {
		p, rf, isr := describe(t, a, name)
		if p != 4 || rf != 3 || isr != "2" {
			t.Errorf("%s: %d partitions, replication factor %d, min.insync.replicas %s; want 4, 3, 2", name, p, rf, isr)
		}
	}
}

// TestLessDurableTopic: an existing topic with replication factor 1 and
// min.insync.replicas 1 gives a warning naming it and the numbers, or with strict
// durability an error.
func TestLessDurableTopic(t *testing.T) {
	cluster := kafkatest.New(t)
	a := admin(t, cluster)
	one := "1"
	fragile := kafkatest.Topic("fragile")
	if err := a.CreateTopic(fragile, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"min.insync.replicas": &one}}, false); err != nil {
		t.Fatal(err)
	}

	var logs testsuite.SyncBuffer
	tr := newTransport(t, cluster, kafka.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := tr.Provision(context.Background(), fragile); err != nil {
		t.Fatalf("without strict mode Provision must only warn: %v", err)
	}
	line := logs.String()
	for _, want := range []string{"level=WARN", "topic=" + fragile, "replication_factor=1", "want_replication_factor=3", "min_insync_replicas=1", "want_min_insync_replicas=2"} {
		if !strings.Contains(line, want) {
			t.Errorf("warning %q lacks %q", line, want)
		}
	}

	strict := newTransport(t, cluster, kafka.Config{StrictDurability: true})
	err := strict.Provision(context.Background(), fragile)
	if !errors.Is(err, kafka.ErrLessDurable) {
		t.Fatalf("strict Provision: %v, want ErrLessDurable", err)
	}
	if err := strict.Publish(fragile, message.NewMessage("1", nil)); !errors.Is(err, kafka.ErrLessDurable) {
		t.Fatalf("strict Publish: %v, want ErrLessDurable", err)
	}
}

// TestProvisioningOff: with provision=false a missing topic is not created, and
// publishing to it fails rather than silently dropping.
func TestProvisioningOff(t *testing.T) {
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{DisableProvisioning: true, ProducerRetries: 1, RetryBackoff: 10 * time.Millisecond})
	absent := kafkatest.Topic("absent")
	if err := tr.Provision(context.Background(), absent); err != nil {
		t.Fatal(err)
	}
	if err := tr.Publish(absent, message.NewMessage("1", nil)); err == nil {
		t.Fatal("Publish to a missing topic with provisioning off succeeded")
	}
	metas, err := admin(t, cluster).DescribeTopics([]string{absent})
	if err != nil || len(metas) != 1 || !errors.Is(metas[0].Err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("topic absent exists after Publish with provisioning off: %v %+v", err, metas)
	}
}

// TestBadPayloadDoesNotStallPartition: a record no codec can read reaches the
// dead-letter topic, and the messages behind it on the same partition are handled.
func TestBadPayloadDoesNotStallPartition(t *testing.T) {
	cluster := kafkatest.New(t)
	h := pubsubtest.NewOn(t, newTransport(t, cluster, kafka.Config{Partitions: 1}))
	c := h.Client
	topic := pubsub.NewTopic[order](kafkatest.Topic("payments"))
	handled := make(chan string, 10)
	if err := pubsub.Subscribe(c, topic, "ledger", func(_ context.Context, m *pubsub.Message[order]) error {
		handled <- m.Payload.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A foreign producer writes garbage with no headers at all, then a good record.
	p, err := sarama.NewSyncProducer(cluster.Addrs, producerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, v := range []string{"\x00\xffnot json", `{"id":"good"}`} {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic.Name(), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case id := <-handled:
		if id != "good" {
			t.Fatalf("handled %q", id)
		}
	case <-time.After(h.Timeout):
		t.Fatal("the good record behind a bad one was never handled: the partition is stalled")
	}
	h.WaitDeadLettered(topic.Name(), "ledger", 1)
}

func producerConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Return.Successes = true
	return sc
}

// TestKeyChoosesPartition: messages with one key land on one partition, in order;
// different keys spread over the partitions.
func TestKeyChoosesPartition(t *testing.T) {
	cluster := kafkatest.New(t)
	tr := newTransport(t, cluster, kafka.Config{Partitions: 6})
	keyed := kafkatest.Topic("keyed")
	ch, err := tr.SubscribeGroup(context.Background(), keyed, "g")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*message.Message
	for i := range 60 {
		m := message.NewMessage(string(rune('A'+i%6))+string(rune('0'+i/6)), nil)
		m.Metadata.Set(metadata.Key, string(rune('A'+i%6)))
		msgs = append(msgs, m)
	}
	if err := tr.Publish(keyed, msgs...); err != nil {
		t.Fatal(err)
	}
	partitionOf := map[string]int32{}
	lastSeq := map[string]int{}
	partitions := map[int32]bool{}
	for range 60 {
		select {
		case m := <-ch:
			pos, ok := transport.PositionFrom(m.Context())
			if !ok {
				t.Fatal("no position in the message context")
			}
			key := m.Metadata.Get(metadata.Key)
			if p, seen := partitionOf[key]; seen && p != pos.Partition {
				t.Fatalf("key %s on partitions %d and %d", key, p, pos.Partition)
			}
			partitionOf[key] = pos.Partition
			partitions[pos.Partition] = true
			seq := int(m.UUID[1] - '0')
			if prev, ok := lastSeq[key]; ok && seq != prev+1 {
				t.Fatalf("key %s: message %d after %d", key, seq, prev)
			}
			lastSeq[key] = seq
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatal("not every message arrived")
		}
	}
	if len(partitions) < 2 {
		t.Errorf("6 keys all landed on %d partition(s) of 6", len(partitions))
	}
}

// TestOffsetsCommittedOnlyAfterAck: a consumer acks the first messages and stops with
// one delivered but not acked; the next consumer of the group starts at that message,
// so nothing acked is redone and nothing unacked is lost.
func TestOffsetsCommittedOnlyAfterAck(t *testing.T) {
	cluster := kafkatest.New(t)
	// The unacked message is abandoned on purpose: a short AckGrace stops waiting for it.
	cfg := kafka.Config{Partitions: 1, CommitInterval: 50 * time.Millisecond, AckGrace: 100 * time.Millisecond}
	pub := newTransport(t, cluster, cfg)
	var msgs []*message.Message
	for i := range 10 {
		msgs = append(msgs, message.NewMessage(string(rune('0'+i)), nil))
	}
	ledger := kafkatest.Topic("ledger")
	if err := pub.Publish(ledger, msgs...); err != nil {
		t.Fatal(err)
	}

	first := newTransport(t, cluster, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := first.SubscribeGroup(ctx, ledger, "g")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m := <-ch
		if m.UUID != string(rune('0'+i)) {
			t.Fatalf("got %s, want %d", m.UUID, i)
		}
		m.Ack()
	}
	<-ch // delivered, never acked
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := newTransport(t, cluster, cfg)
	ch, err = second.SubscribeGroup(context.Background(), ledger, "g")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if m.UUID != "5" {
			t.Fatalf("the group resumed at message %s, want 5 (the first one not acked)", m.UUID)
		}
		m.Ack()
	case <-time.After(30 * time.Second):
		t.Fatal("the group did not resume")
	}
}

// TestRebalanceLosesNothing: while 3,000 messages flow through a 6-partition topic, a
// second member joins the group and later the first leaves. Every message is handled,
// and what was acked before each rebalance is not handed out again (its offsets were
// committed when the partitions moved), beyond the one message per partition that may
// be in flight at that moment.
func TestRebalanceLosesNothing(t *testing.T) {
	const total, partitions = 3000, 6
	// A short session, so that members heartbeat and so rebalance within a second.
	cluster := kafkatest.New(t, kfake.GroupMinSessionTimeout(time.Second))
	topic := pubsub.NewTopic[order](kafkatest.Topic("rebalance"), pubsub.WithKey(func(o order) string { return o.ID }))
	cfg := kafka.Config{Partitions: partitions, SessionTimeout: time.Second}

	var mu sync.Mutex
	seen := map[string]int{}
	handled := make(chan struct{}, total*2)
	var byMember [2]atomic.Int64
	handler := func(member int) pubsub.Handler[order] {
		return func(_ context.Context, m *pubsub.Message[order]) error {
			time.Sleep(200 * time.Microsecond) // some work, so the rebalances land mid-stream
			mu.Lock()
			seen[m.Payload.ID]++
			mu.Unlock()
			byMember[member].Add(1)
			handled <- struct{}{}
			return nil
		}
	}
	member := func(i int) *pubsub.Client {
		c, err := pubsub.New(newTransport(t, cluster, cfg))
		if err != nil {
			t.Fatal(err)
		}
		if err := pubsub.Subscribe(c, topic, "g", handler(i)); err != nil {
			t.Fatal(err)
		}
		go c.Run(context.Background())
		return c
	}
	wait := func(n int) {
		for range n {
			select {
			case <-handled:
			case <-time.After(60 * time.Second):
				t.Fatalf("handling stalled")
			}
		}
	}

	first := member(0)
	pub, err := pubsub.New(newTransport(t, cluster, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	go func() { // about a message a millisecond, so that both rebalances land mid-stream
		for i := range total {
			if err := pubsub.Publish(context.Background(), pub, topic, order{ID: fmt.Sprint(i)}); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wait(300)
	second := member(1) // joins: the partitions are split
	defer second.Close()
	for start := time.Now(); byMember[1].Load() < 100; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatal("the second member got no partition within 30s of joining")
		}
	}
	if err := first.Close(); err != nil { // leaves: the second member takes every partition
		t.Fatal(err)
	}

	deadline := time.After(60 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == total {
			break
		}
		select {
		case <-handled:
		case <-deadline:
			t.Fatalf("%d of %d messages handled after the rebalances", n, total)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	dup := 0
	for _, c := range seen {
		dup += c - 1
	}
	t.Logf("%d messages, first member handled %d, second %d, %d handled twice across two rebalances",
		total, byMember[0].Load(), byMember[1].Load(), dup)
	if dup > 2*partitions {
		t.Errorf("%d messages handled again after the rebalances; acked work must be committed when partitions move (at most one in flight per partition and rebalance)", dup)
	}
}

// TestAckAfterSubscriptionEndsIsCommitted: a message acked after its subscription's
// context ended (a handler finishing during a graceful drain) is committed, so the
// next consumer of the group does not get it again. watermill-kafka alone drops such
// an ack.
func TestAckAfterSubscriptionEndsIsCommitted(t *testing.T) {
	cluster := kafkatest.New(t)
	cfg := kafka.Config{Partitions: 1}
	topic := kafkatest.Topic("drain")
	pub := newTransport(t, cluster, cfg)
	if err := pub.Publish(topic, message.NewMessage("first", nil), message.NewMessage("second", nil)); err != nil {
		t.Fatal(err)
	}

	first := newTransport(t, cluster, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := first.SubscribeGroup(ctx, topic, "g")
	if err != nil {
		t.Fatal(err)
	}
	var m *message.Message
	select {
	case m = <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("nothing delivered")
	}
	cancel() // the drain begins while the handler still works
	select {
	case <-m.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the message's context did not end with its subscription")
	}
	time.Sleep(50 * time.Millisecond)
	m.Ack() // the handler finishes
	for range ch {
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := newTransport(t, cluster, cfg)
	ch, err = second.SubscribeGroup(context.Background(), topic, "g")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ch:
		if got.UUID != "second" {
			t.Fatalf("after the drain the group got %q again; its ack was lost", got.UUID)
		}
		got.Ack()
	case <-time.After(30 * time.Second):
		t.Fatal("the group did not resume")
	}
}
