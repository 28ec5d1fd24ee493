package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/transport/internal/lane"
)

// TestLateRoomKeepsTheSpare: a lane's OnRoom (room) is late getting s.mu; meanwhile
// the poll loop refills the lane (the refill keeps the old full mark, so the loop
// polls again at once) and the next fetch becomes its spare. The late room must leave
// the spare beside the lane that is full again, and the partition paused: pushed, the
// lane would hold more than Prefetch plus the fetch that filled it (found by a review;
// a room is sure to come, since only the settle that calls OnRoom clears full).
func TestLateRoomKeepsTheSpare(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s := &subscription{topic: "t", cl: cl, ctx: ctx, lanes: map[int32]*lane.Lane{}, fullSince: map[int32]time.Time{},
		spare: map[int32][]lane.Record{}, held: map[int32]bool{}, demand: make(chan struct{}, 1)}
	out := make(chan *message.Message)
	entered, gate, roomed := make(chan struct{}, 1), make(chan struct{}), make(chan struct{}, 1)
	const prefetch = 4
	l := lane.New(lane.Config{Partition: 0, Buffer: prefetch, Out: out, Context: ctx,
		Build: func(r *lane.Record) *message.Message { return toMessage(r.Data.(*kgo.Record), false) },
		OnRoom: func() { // the worker is descheduled before s.mu
			entered <- struct{}{}
			<-gate
			s.room(0)
			roomed <- struct{}{}
		},
	})
	defer l.Stop(0)
	s.lanes[0] = l
	fetch := func(from int64) kgo.FetchTopicPartition {
		var recs []*kgo.Record
		for o := from; o < from+prefetch; o++ {
			recs = append(recs, &kgo.Record{Topic: "t", Partition: 0, Offset: o, Value: []byte("x")})
		}
		return kgo.FetchTopicPartition{Topic: "t", FetchPartition: kgo.FetchPartition{Partition: 0, HighWatermark: 100, Records: recs}}
	}
	s.push(fetch(0)) // fills the lane
	if !l.Full() {
		t.Fatal("not full")
	}
	s.mu.Lock()
	s.fullSince[0] = time.Now().Add(-time.Second) // full for overWait already
	s.mu.Unlock()
	for range 2 { // drain to half: OnRoom fires, and waits at the gate
		(<-out).Ack()
	}
	<-entered
	s.push(fetch(4)) // the lane is not full: pushed, full again, the old mark kept
	if _, poll := s.demandNow(time.Now()); !poll {
		t.Fatal("the loop waits")
	}
	s.push(fetch(8)) // full: the spare; the partition paused
	close(gate)      // the late room
	<-roomed
	st := l.Stats() // the lane alone, not its spare
	s.mu.Lock()
	held, spare := s.held[0], len(s.spare[0])
	s.mu.Unlock()
	if n := st.Buffered + st.InFlight; n > 2*prefetch || !held || spare != prefetch {
		t.Errorf("after the late room the lane holds %d records (Prefetch %d plus a fetch of %d is the bound), the spare %d, partition paused: %v; want the spare kept and the partition paused",
			n, prefetch, prefetch, spare, held)
	}
}
