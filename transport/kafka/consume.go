package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/internal/lane"
)

// subscription is one Subscribe: a franz-go consumer of one topic, in one group (or
// alone), and a lane per partition it owns.
//
// A message's way: the poll loop takes the records franz-go fetched and pushes each
// partition's into that partition's lane; the lane's workers hand the messages out
// under the subscription's concurrency rules and take in their acks; every
// CommitInterval, and when partitions are revoked or the subscription ends, the lanes'
// watermarks (the lowest offset not finished) are committed.
//
// Back-pressure is the poll loop's: it does not poll while a lane is full, for at most
// 250 ms a lane; a lane slower than that gets its next fetch kept beside it, its
// partition paused, until it has room (see awaitDemand). When every full lane was
// paused at once instead, a resumed partition waited for its broker's fetch
// long-polling for idle siblings: the 100 B consume benchmark lost up to half a second
// at a time that way.
type subscription struct {
	t     *Transport
	topic string
	opts  transport.SubscribeOptions
	cl    *kgo.Client
	// handle, when set (SubscribeHandler), is run by the lanes' workers; out then
	// delivers nothing.
	handle func(*message.Message) error
	out    chan *message.Message
	done   chan struct{}

	ctx    context.Context // ends when the subscription ends
	cancel context.CancelFunc

	mu        sync.Mutex // guards lanes, paused, fullSince, spare and held, and orders the calls that change fetching
	lanes     map[int32]*lane.Lane
	paused    bool
	fullSince map[int32]time.Time     // partitions whose lane is full, since when (see awaitDemand)
	spare     map[int32][]lane.Record // a fetch kept beside a full lane (see awaitDemand)
	held      map[int32]bool          // partitions whose fetching is paused (see hold)
	demand    chan struct{}           // wakes the poll loop when a lane has room or the lanes change

	group groupState // whether this member is in its group, for Health and the log

	commitMu  sync.Mutex // serializes commits, so that a late commit never rewinds a revoked partition's
	committed map[int32]int64
}

// Subscribe consumes topic in opts.Group with franz-go; see transport.Transport. In a
// group, a new group starts at the oldest offset, the balancer is Config.Balancer and
// the committed offset of each partition is its lowest unfinished offset. Without a
// group the subscription reads every partition from the oldest offset and commits
// nothing; with opts.FromEnd it reads from each partition's end as Subscribe found it
// (see consumeFrom). Each delivered message's context carries its transport.Position.
func (t *Transport) Subscribe(ctx context.Context, topic string, opts transport.SubscribeOptions) (transport.Subscription, error) {
	return t.subscribe(ctx, topic, opts, nil)
}

// SubscribeHandler subscribes as Subscribe does, with handle run by the workers that
// take the messages; see transport.HandlerSubscriber.
func (t *Transport) SubscribeHandler(ctx context.Context, topic string, opts transport.SubscribeOptions, handle func(*message.Message) error) (transport.Subscription, error) {
	if handle == nil {
		return nil, fmt.Errorf("kafka: %w: SubscribeHandler needs a handler", transport.ErrInvalidOption)
	}
	return t.subscribe(ctx, topic, opts, handle)
}

func (t *Transport) subscribe(ctx context.Context, topic string, opts transport.SubscribeOptions, handle func(*message.Message) error) (transport.Subscription, error) {
	if opts.Concurrency < 0 || opts.Drain < 0 {
		return nil, fmt.Errorf("kafka: %w: Concurrency %d and Drain %s must not be negative", transport.ErrInvalidOption, opts.Concurrency, opts.Drain)
	}
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	pctx, done := t.whileOpen(ctx) // for the calls before the subscription runs
	defer done()
	t.topics.forget(topic) // a topic deleted since it was provisioned is created again
	if err := t.topics.ensure(pctx, topic); err != nil {
		return nil, t.orClosed(err)
	}
	if opts.Drain == 0 {
		opts.Drain = t.cfg.Drain
	}
	s := &subscription{t: t, topic: topic, opts: opts, handle: handle, out: make(chan *message.Message), done: make(chan struct{}),
		lanes: map[int32]*lane.Lane{}, fullSince: map[int32]time.Time{}, spare: map[int32][]lane.Record{}, held: map[int32]bool{}, demand: make(chan struct{}, 1), committed: map[int32]int64{}}
	s.ctx, s.cancel = context.WithCancel(ctx)

	kopts, err := t.consumeFrom(pctx, topic, opts)
	if err != nil {
		s.cancel()
		return nil, t.orClosed(err)
	}
	if opts.Group != "" {
		kopts = append(kopts, t.cfg.groupOptions()...)
		kopts = append(kopts, kgo.ConsumerGroup(opts.Group),
			kgo.OnPartitionsAssigned(s.assigned), kgo.OnPartitionsRevoked(s.revoked), kgo.OnPartitionsLost(s.lost))
	}
	cl, err := t.newClient(kopts...)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.cl = cl

	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		cl.Close()
		s.cancel()
		return nil, fmt.Errorf("kafka: subscribe %q: %w", topic, transport.ErrClosed)
	}
	t.subs[s] = struct{}{}
	t.subsDone.Add(1)
	t.mu.Unlock()
	go s.run()
	return s, nil
}

// consumeFrom returns the consumer options that say what s reads: topic, in a group
// or from the oldest offset; or, for a tail (no group, FromEnd), each partition from
// its end as listed now (the last stable offset under read_committed), so that every
// message published after Subscribe returns is read and none before it. A tail follows
// the partitions the topic has now. A topic that does not exist yet (provisioning is
// off) is waited for and read from its start: all it will hold comes after Subscribe.
func (t *Transport) consumeFrom(ctx context.Context, topic string, opts transport.SubscribeOptions) ([]kgo.Opt, error) {
	kopts := t.cfg.consumerOptions()
	if opts.Group != "" || !opts.FromEnd {
		return append(kopts, kgo.ConsumeTopics(topic)), nil
	}
	ends, err := t.endOffsets(ctx, topic)
	switch {
	case errors.Is(err, transport.ErrUnknownTopic):
		return append(kopts, kgo.ConsumeTopics(topic)), nil
	case err != nil:
		return nil, err
	}
	from := make(map[int32]kgo.Offset, len(ends))
	for p, end := range ends {
		from[p] = kgo.NewOffset().At(end)
	}
	return append(kopts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})), nil
}

// run is the poll loop, then the end of the subscription.
func (s *subscription) run() {
	commits := make(chan struct{})
	if s.opts.Group != "" {
		go s.commitEvery(commits)
	} else {
		close(commits)
	}
	for {
		s.awaitDemand()
		fetches := s.cl.PollRecords(s.ctx, 0)
		if s.ctx.Err() != nil || fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if s.groupFailed(err) {
				return
			}
			if !errors.Is(err, context.Canceled) {
				s.t.cfg.Logger.Warn("kafka: fetch failed; franz-go retries", "topic", topic, "partition", p, "error", err)
			}
		})
		fetches.EachPartition(s.push)
		if s.opts.Group != "" {
			s.cl.AllowRebalance()
		}
	}
	<-commits
	err := s.end()
	close(s.done)
	s.t.subscriptionEnded(s, err)
}

// push hands one partition's fetched records to its lane, or, when the lane is full,
// keeps them beside it as its spare fetch (see room) and pauses the partition.
func (s *subscription) push(p kgo.FetchTopicPartition) {
	l := s.lane(p.Partition)
	if l == nil {
		return // not ours (any more): the owner reads them from the committed offset
	}
	l.SetEnd(p.HighWatermark)
	if len(p.Records) == 0 {
		return
	}
	keyed := s.opts.Concurrency > 1 && !s.opts.Unordered // only then do keys change the order
	recs := make([]lane.Record, len(p.Records))
	for i, r := range p.Records {
		recs[i] = lane.Record{Offset: r.Offset, Time: r.Timestamp, Data: r}
		if keyed && len(r.Key) > 0 {
			recs[i].Key, recs[i].Keyed = string(r.Key), true
		}
	}
	if s.spareFor(p.Partition, l, recs) {
		s.hold(s.cl, p.Partition)
		return
	}
	if l.Push(recs...) {
		s.filled(p.Partition, l)
	}
}

// spareFor keeps recs as the spare fetch of partition p when its lane l is full, and
// reports whether it did. Only a lane that does not hold the poll loop back can be
// full here (full for overWait, or filled again from its spare; see awaitDemand).
func (s *subscription) spareFor(p int32, l *lane.Lane, recs []lane.Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lanes[p] != l || !l.Full() {
		return false
	}
	s.spare[p] = append(s.spare[p], recs...)
	return true
}

// overWait is the longest a full lane holds the poll loop back.
const overWait = 250 * time.Millisecond

// awaitDemand returns when the next poll should go: when no lane is full, except lanes
// full for overWait or more and lanes with a spare fetch; or when the subscription
// ends.
//
// So back-pressure is first the loop's: while it waits, franz-go holds at most one
// fetch per broker and asks that broker for nothing more, and once polled it asks at
// once for the partitions that are not paused, which a broker answers without waiting
// as soon as one of them has records. A lane full for overWait (its handlers are slow,
// or stuck) holds the others back no longer: the next poll goes, and its partition's
// next records become its spare fetch, kept beside the lane while the partition is
// paused (hold) and pushed once the lane has room (room). A paused partition is left
// out of its broker's fetches, so once resumed it may wait for a fetch in flight that
// the broker holds for its idle siblings (FetchMaxWait, 500 ms); its lane meanwhile
// has the spare fetch to handle. A lane holds at most Prefetch records plus the fetch
// that filled it, and a spare fetch may wait beside it.
func (s *subscription) awaitDemand() {
	var timer *time.Timer
	for {
		wait, now := s.demandNow(time.Now())
		if now {
			return
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-s.demand:
		case <-s.ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// demandNow reports whether the next poll should go now (see awaitDemand), else how
// long to wait at most.
func (s *subscription) demandNow(now time.Time) (wait time.Duration, poll bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, since := range s.fullSince {
		switch l := s.lanes[p]; {
		case l == nil || !l.Full():
			delete(s.fullSince, p) // its room came before fullSince was set
		case len(s.spare[p]) > 0, now.Sub(since) >= overWait:
		default:
			return overWait - now.Sub(since), false
		}
	}
	return 0, true
}

// wake tells the poll loop that the lanes changed.
func (s *subscription) wake() {
	select {
	case s.demand <- struct{}{}:
	default:
	}
}

// filled records that the lane l of partition p is full, from now.
func (s *subscription) filled(p int32, l *lane.Lane) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.fullSince[p]; !ok && s.lanes[p] == l && l.Full() {
		s.fullSince[p] = time.Now()
	}
}

// room is the lane's OnRoom: partition p's lane is no longer full. Its spare fetch, if
// it has one, is pushed now, before its fetching resumes, so that the lane has it to
// handle while the next fetch comes; a lane that this fills again was slow, and does
// not hold the poll loop back (fullSince is long past). A room that comes late, after
// a poll filled the lane again, leaves the spare for the next one. The poll loop wakes.
func (s *subscription) room(p int32) {
	s.mu.Lock()
	l, spare := s.lanes[p], s.spare[p]
	switch {
	case l != nil && len(spare) > 0 && l.Full():
		// a poll refilled the lane before this late room: the spare waits for the next
		// room, which is sure to come (only the settle that calls OnRoom clears full)
	case l != nil && len(spare) > 0:
		delete(s.spare, p)
		if l.Push(spare...) {
			s.fullSince[p] = time.Time{}
		} else {
			delete(s.fullSince, p)
		}
	case l == nil || !l.Full(): // not a later fill's (a poll may have come between)
		delete(s.fullSince, p)
	}
	s.mu.Unlock()
	s.hold(s.cl, p)
	s.wake()
}

// hold makes the fetching of partition p follow its lane: paused while a spare fetch
// waits beside the lane (see awaitDemand), fetched otherwise (and when p has no lane:
// it is not ours, and a later assignment must fetch it). It reads the state and
// changes franz-go's under s.mu, so the last call wins with the state as it is then.
// cl is the client to change: s.cl, or in a group callback the client franz-go passes
// (a join refused at once calls lost before Subscribe has stored s.cl).
func (s *subscription) hold(cl *kgo.Client, p int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lanes[p]
	pause := l != nil && len(s.spare[p]) > 0
	if pause == s.held[p] {
		return
	}
	if pause {
		s.held[p] = true
		cl.PauseFetchPartitions(map[string][]int32{s.topic: {p}})
		return
	}
	delete(s.held, p)
	cl.ResumeFetchPartitions(map[string][]int32{s.topic: {p}})
}

// lane returns the lane of partition p: in a group, the one made when p was assigned
// (nil if it was not); alone, one made now if needed.
func (s *subscription) lane(p int32) *lane.Lane {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.lanes[p]; ok || s.opts.Group != "" {
		return l
	}
	return s.newLaneLocked(p)
}

func (s *subscription) newLaneLocked(p int32) *lane.Lane {
	l := lane.New(lane.Config{
		Partition:      p,
		Concurrency:    s.opts.Concurrency,
		Unordered:      s.opts.Unordered,
		KeyConcurrency: s.opts.KeyConcurrency,
		Buffer:         s.t.cfg.Prefetch,
		NackDelay:      s.t.cfg.NackDelay,
		Handle:         s.handle,
		Out:            s.out,
		Context:        s.ctx,
		Build:          func(r *lane.Record) *message.Message { return toMessage(r.Data.(*kgo.Record), s.handle != nil) },
		OnRoom:         func() { s.room(p) },
	})
	if s.paused {
		l.Pause()
	}
	s.lanes[p] = l
	return l
}

// assigned makes the lanes of newly assigned partitions. franz-go calls it, as the
// other callbacks, between polls (BlockRebalanceOnPoll).
func (s *subscription) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	s.joined()
	defer s.wake() // a new lane wants records
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range assigned[s.topic] {
		if _, ok := s.lanes[p]; !ok {
			s.newLaneLocked(p)
		}
	}
}

// revoked hands partitions over in a rebalance: nothing new goes out, retry and nack
// waits end, the messages in flight finish (within the drain, cut to half the
// rebalance timeout so that this member is not evicted), and the watermarks are
// committed before the partitions go.
func (s *subscription) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	parts := revoked[s.topic]
	if len(parts) == 0 {
		return
	}
	lanes := s.take(parts)
	drain := min(s.opts.Drain, s.t.cfg.RebalanceTimeout/2)
	stopAll(lanes, drain)
	if err := s.commitLanes(ctx, lanes); err != nil {
		s.t.cfg.Logger.Error("kafka: committing revoked partitions failed; their unfinished messages will be handled again",
			"topic", s.topic, "group", s.opts.Group, "partitions", parts, "error", err)
	}
	for _, p := range parts {
		s.hold(cl, p) // no lane: a later assignment fetches again
	}
}

// lost gives partitions up without committing: the group has already moved on
// (a fatal group error, a session that ended), so a commit would fail or rewind.
// Like revoked, it uses the client franz-go passes: a join that fails at once (the
// group refuses this member) calls it before Subscribe has stored s.cl.
func (s *subscription) lost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	parts := lost[s.topic]
	if len(parts) == 0 {
		return
	}
	lanes := s.take(parts)
	stopAll(lanes, 0)
	for _, p := range parts {
		s.hold(cl, p)
	}
}

// take removes the lanes of parts from the subscription and returns them.
func (s *subscription) take(parts []int32) map[int32]*lane.Lane {
	defer s.wake() // the lanes left may want records
	s.mu.Lock()
	defer s.mu.Unlock()
	taken := make(map[int32]*lane.Lane, len(parts))
	for _, p := range parts {
		if l, ok := s.lanes[p]; ok {
			taken[p] = l
			delete(s.lanes, p)
			delete(s.fullSince, p)
			delete(s.spare, p) // never handed out: the next owner reads them
		}
	}
	return taken
}

// stopAll stops every lane at once, letting each drain for drain.
func stopAll(lanes map[int32]*lane.Lane, drain time.Duration) {
	var wg sync.WaitGroup
	for _, l := range lanes {
		wg.Go(func() { l.Stop(drain) })
	}
	wg.Wait()
}

// commitEvery commits the watermarks every CommitInterval until the subscription
// ends; it closes done when it has stopped.
func (s *subscription) commitEvery(done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(s.t.cfg.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
			s.mu.Lock()
			lanes := make(map[int32]*lane.Lane, len(s.lanes))
			for p, l := range s.lanes {
				lanes[p] = l
			}
			s.mu.Unlock()
			if err := s.commitLanes(s.ctx, lanes); err != nil && s.ctx.Err() == nil {
				s.t.cfg.Logger.Warn("kafka: offset commit failed; the next one retries", "topic", s.topic, "group", s.opts.Group, "error", err)
			}
		}
	}
}

// commitLanes commits the watermark of every lane that moved since its last commit.
func (s *subscription) commitLanes(ctx context.Context, lanes map[int32]*lane.Lane) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	offsets := map[int32]kgo.EpochOffset{}
	for p, l := range lanes {
		if next, ok := l.Watermark(); ok && next > s.committed[p] {
			offsets[p] = kgo.EpochOffset{Epoch: -1, Offset: next}
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	var err error
	s.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{s.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, cerr error) {
			if cerr != nil {
				err = cerr
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil {
						err = errors.Join(err, fmt.Errorf("partition %d: %w", p.Partition, perr))
						continue
					}
					s.committed[p.Partition] = offsets[p.Partition].Offset
				}
			}
		})
	return err
}

// end stops every lane (their messages in flight finish within the drain), commits
// the final watermarks, leaves the group and closes the channel. A failed final commit
// is logged and returned, for Close to report.
func (s *subscription) end() error {
	s.mu.Lock()
	lanes := s.lanes
	s.lanes = map[int32]*lane.Lane{}
	s.mu.Unlock()
	drain := s.opts.Drain
	if s.t.closed.Load() {
		drain = min(drain, closeWait)
	}
	stopAll(lanes, drain)
	var err error
	if s.opts.Group != "" {
		ctx, cancel := context.WithTimeout(context.Background(), closeWait)
		if cerr := s.commitLanes(ctx, lanes); cerr != nil {
			err = fmt.Errorf("kafka: the last offset commit of %q in group %q failed; its unfinished messages will be handled again: %w",
				s.topic, s.opts.Group, cerr)
			s.t.cfg.Logger.Error(err.Error())
		}
		cancel()
		s.cl.AllowRebalance()
	}
	s.cl.Close() // leaves the group; revoked sees no lane left
	close(s.out)
	return err
}

// stop ends the subscription, as the end of its context does.
func (s *subscription) stop() { s.cancel() }

func (s *subscription) Messages() <-chan *message.Message { return s.out }
func (s *subscription) Done() <-chan struct{}             { return s.done }

// Pause stops fetching the topic and handing out messages; the member stays in its
// group with its partitions. It changes only franz-go's topic pause set, so lane
// back-pressure (the partition set) goes on as before while paused.
func (s *subscription) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = true
	for _, l := range s.lanes {
		l.Pause()
	}
	s.cl.PauseFetchTopics(s.topic)
}

// Resume undoes Pause: each partition is fetched again unless a spare fetch waits
// beside its lane (see awaitDemand), in which case its lane's OnRoom resumes it.
func (s *subscription) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	for _, l := range s.lanes {
		l.Resume()
	}
	s.cl.ResumeFetchTopics(s.topic)
}

// Stats reports each partition this member owns.
func (s *subscription) Stats() []transport.PartitionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	stats := make([]transport.PartitionStats, 0, len(s.lanes))
	for p, l := range s.lanes {
		st := l.Stats()
		st.Buffered += len(s.spare[p])
		stats = append(stats, st)
	}
	return stats
}
