package kafka_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestGroupRefusalIsReported: a group held by a member that balances with range only
// refuses a member of ours that lists cooperative-sticky only. Ours says why, at
// error level and in GroupError, naming Kafka's error and the setting to change;
// once the range member has left, ours joins, reads the topic and GroupError is nil.
func TestGroupRefusalIsReported(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("group-refusal")
	const group = "refusal-group"
	setup := newTransport(t, cluster, kafka.Config{Partitions: 2})
	if err := setup.Publish(topic, keyed(4, func(i int) string { return "k" + string(rune('a'+i)) })...); err != nil {
		t.Fatal(err)
	}

	theirs := cluster.RangeMember(t, topic, group)

	log := &errorLog{}
	ours := newTransport(t, cluster, kafka.Config{Balancer: kafka.BalancerCooperativeSticky, SessionTimeout: 6 * time.Second,
		Logger: slog.New(log)})
	sub := subscribe(t, ours, topic, transport.SubscribeOptions{Group: group})
	member, ok := sub.(transport.GroupMember)
	if !ok {
		t.Fatal("a Kafka subscription does not implement transport.GroupMember")
	}
	deadline := time.Now().Add(time.Minute)
	for member.GroupError() == nil {
		if time.Now().After(deadline) {
			t.Fatal("GroupError stayed nil for a minute while the group refused the member")
		}
		time.Sleep(20 * time.Millisecond)
	}
	msg := member.GroupError().Error()
	for _, want := range []string{"INCONSISTENT_GROUP_PROTOCOL", "cannot join group", "balancer="} {
		if !strings.Contains(msg, want) {
			t.Errorf("GroupError %q does not say %q", msg, want)
		}
	}
	if !log.has("cannot join group") {
		t.Errorf("the refusal was not logged at error level; error log: %q", log.msgs)
	}

	theirs.Close() // leaves the group
	select {
	case m := <-sub.Messages():
		m.Ack()
	case <-time.After(time.Minute):
		t.Fatalf("ours read nothing within a minute of the range member leaving (GroupError %v)", member.GroupError())
	}
	if err := member.GroupError(); err != nil {
		t.Errorf("GroupError after joining = %v, want nil", err)
	}
}
