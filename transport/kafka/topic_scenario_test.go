package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// deleteTopic deletes topic through the admin API and waits until the cluster no
// longer lists it.
func deleteTopic(t *testing.T, cluster *kafkatest.Cluster, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := adm.DeleteTopic(ctx, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("deleting %s: %v", topic, err)
	}
	if !waitFor(10*time.Second, func() bool { return !topicExists(t, cluster, topic) }) {
		t.Fatalf("%s still listed after its deletion", topic)
	}
}

func topicExists(t *testing.T, cluster *kafkatest.Cluster, topic string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		t.Fatalf("listing topics: %v", err)
	}
	d, ok := details[topic]
	return ok && d.Err == nil && len(d.Partitions) > 0
}

// TestDeletedTopicProvisionedAgainOnPublish: a topic deleted after the transport
// provisioned it is created again by the next Publish, which succeeds, and its
// message is consumed.
func TestDeletedTopicProvisionedAgainOnPublish(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("deleted-pub")
	tr := newTransport(t, cluster, kafka.Config{Partitions: 2})
	if err := tr.Publish(topic, keyed(1, nil)...); err != nil {
		t.Fatal(err)
	}
	deleteTopic(t, cluster, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msg := keyed(2, nil)[1]
	msg.SetContext(ctx)
	if err := tr.Publish(topic, msg); err != nil {
		t.Fatalf("Publish after the topic was deleted: %v", err)
	}
	if !topicExists(t, cluster, topic) {
		t.Fatal("the topic was not created again")
	}
	sub := subscribe(t, tr, topic, transport.SubscribeOptions{Group: "g"})
	got := receive(t, sub, 1, 20*time.Second)
	if string(got[0].Payload) != "1" {
		t.Errorf("received %q, want the message published after the deletion", got[0].Payload)
	}
}

// TestDeletedTopicProvisionedAgainOnSubscribe: a topic deleted after the transport
// provisioned it is created again by the next Subscribe, with the configured
// partitions.
func TestDeletedTopicProvisionedAgainOnSubscribe(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("deleted-sub")
	tr := newTransport(t, cluster, kafka.Config{Partitions: 2})
	if err := tr.Provision(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	deleteTopic(t, cluster, topic)
	subscribe(t, tr, topic, transport.SubscribeOptions{Group: "g"})
	if !topicExists(t, cluster, topic) {
		t.Fatal("Subscribe did not create the deleted topic again")
	}
}

// TestDeletedTopicProvisionedAgainOnPublishAsync: after a topic is deleted, at most
// the first PublishAsync fails; the next one creates the topic again and is stored.
func TestDeletedTopicProvisionedAgainOnPublishAsync(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.New(t)
	topic := kafkatest.Topic("deleted-async")
	tr := newTransport(t, cluster, kafka.Config{Partitions: 2})
	if err := tr.Publish(topic, keyed(1, nil)...); err != nil {
		t.Fatal(err)
	}
	deleteTopic(t, cluster, topic)
	publish := func(i int) error {
		done := make(chan error, 1)
		tr.PublishAsync(context.Background(), topic, keyed(i+1, nil)[i], func(err error) { done <- err })
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("PublishAsync %d was not done within 30s", i)
			return nil
		}
	}
	if err := publish(1); err != nil {
		t.Logf("the first PublishAsync after the deletion failed: %v", err)
		if err := publish(2); err != nil {
			t.Fatalf("the second PublishAsync after the deletion failed too: %v", err)
		}
	}
	if !topicExists(t, cluster, topic) {
		t.Fatal("the topic was not created again")
	}
}
