package pubsub_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/pubsubtest"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestHealthShowsGroupRefusal: a subscription whose group is held by members that
// share no balancer with it (range only, against balancer=cooperative-sticky) shows
// the refusal in Health's GroupError, and the transport logs it at error level; once
// they have left, the subscription joins and GroupError is empty.
func TestHealthShowsGroupRefusal(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("health-refusal")
	const group = "refusal"
	log := &levelLog{}
	tr, err := kafka.New(context.Background(), kafka.Config{Brokers: cluster.Addrs, Balancer: kafka.BalancerCooperativeSticky,
		SessionTimeout: 6 * time.Second, Logger: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, tr.Provision(ctx, topic))
	must(t, tr.Publish(topic, message.NewMessage("first", []byte(`{"n":0}`)))) // so that their poll returns
	theirs := cluster.RangeMember(t, topic, group)

	h := pubsubtest.NewOn(t, tr)
	tp := pubsub.NewTopic[counted](topic)
	got := make(chan struct{}, 1)
	must(t, pubsub.Subscribe(h.Client, tp, group, func(context.Context, *pubsub.Message[counted]) error {
		select {
		case got <- struct{}{}:
		default:
		}
		return nil
	}))

	groupError := func() string { return h.Client.Health()[0].GroupError }
	for deadline := time.Now().Add(time.Minute); groupError() == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Health showed no GroupError for a minute while the group refused the member")
		}
	}
	if e := groupError(); !strings.Contains(e, "INCONSISTENT_GROUP_PROTOCOL") {
		t.Errorf("GroupError %q does not name Kafka's error", e)
	}
	if log.count(slog.LevelError, "cannot join group", group) == 0 {
		t.Error("the refusal was not logged at error level")
	}

	theirs.Close() // leaves the group; ours joins and reads the topic from its start
	select {
	case <-got:
	case <-time.After(time.Minute):
		t.Fatalf("nothing handled within a minute of the range member leaving (GroupError %q)", groupError())
	}
	if e := groupError(); e != "" {
		t.Errorf("GroupError after joining: %q", e)
	}
}
