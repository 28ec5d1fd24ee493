package kafka

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/transport"
)

// PublishOutgoingAsync is PublishAsync for a message given as a transport.Outgoing:
// the record is written from it directly, with no Watermill message and no metadata
// map in between.
func (t *Transport) PublishOutgoingAsync(ctx context.Context, topic string, m *transport.Outgoing, done transport.Settler) {
	if err := t.checkOpen(); err != nil {
		done.Settle(err)
		return
	}
	if err := t.topics.ensure(ctx, topic); err != nil {
		done.Settle(err)
		return
	}
	o, err := t.outgoingRecord(topic, m)
	if err != nil {
		done.Settle(t.produceError(topic, err))
		return
	}
	o.t, o.done = t, done
	t.producer.Produce(ctx, &o.rec, settleOutgoing)
}

// PublishOutgoing is Publish for a message given as a transport.Outgoing.
func (t *Transport) PublishOutgoing(ctx context.Context, topic string, m *transport.Outgoing) error {
	err := t.publishOutgoing(ctx, topic, m)
	if isUnknownTopic(err) {
		// Deleted since it was provisioned: provision it again, once.
		t.topics.forget(topic)
		err = t.publishOutgoing(ctx, topic, m)
	}
	return err
}

func (t *Transport) publishOutgoing(ctx context.Context, topic string, m *transport.Outgoing) error {
	if err := t.checkOpen(); err != nil {
		return err
	}
	if err := t.topics.ensure(ctx, topic); err != nil {
		return err
	}
	o, err := t.outgoingRecord(topic, m)
	if err != nil {
		return t.produceError(topic, err)
	}
	o.rec.Context = ctx // the record gives up with ctx, as Publish's does
	err = t.producer.ProduceSync(ctx, &o.rec).FirstErr()
	o.release()
	return t.produceError(topic, err)
}

// outgoingRecord is newOutgoingRecord, or an error wrapping kerr.MessageTooLarge when
// the record is larger than MaxMessageBytes.
func (t *Transport) outgoingRecord(topic string, m *transport.Outgoing) (*outgoingRecord, error) {
	o := newOutgoingRecord(topic, m)
	if n := recordSize(&o.rec); n > t.cfg.MaxMessageBytes {
		o.release()
		return nil, fmt.Errorf("message %s of about %d bytes exceeds max_message_bytes (%d bytes): %w", m.ID, n, t.cfg.MaxMessageBytes, kerr.MessageTooLarge)
	}
	return o, nil
}

// outgoingHeaders is how many headers an outgoingRecord holds without a slice of its
// own: the id, pubsubkit's four keys and a correlation header or one entry of
// WithMetadata.
const outgoingHeaders = 6

// outgoingRecord is a record, room for its headers and what its callback needs, in
// one allocation. For PublishOutgoingAsync it is the record's Context, so that
// settleOutgoing, one function for every record, finds it again; as a context it is
// context.Background for good (once queued, a record does not depend on the
// publisher's ctx).
//
// outgoingRecords are reused (outgoingRecords, a sync.Pool): once franz-go has called
// a record's promise it no longer reads the record, so settleOutgoing and
// PublishOutgoing give it back after it settled. It may still hold the record's
// Context a while (a producer waiting for a new topic's metadata watches the first
// record's): that is why the embedded Context is set once, when the outgoingRecord is
// made, and never changed. A franz-go hook (Config.ClientOptions) must not keep a
// produced record after its promise.
type outgoingRecord struct {
	context.Context
	rec     kgo.Record
	headers [outgoingHeaders]kgo.RecordHeader
	t       *Transport
	done    transport.Settler
}

// newOutgoingRecord writes m as toRecord writes a message: the payload as the value,
// the key as the record key, the id in UUIDHeader, then every header in m's order; its
// timestamp is m.Time (franz-go reads the clock for a zero one, as for toRecord's). The
// record refers to m's bytes (the id, the key, the payload and the header values)
// without copying them: OutgoingPublisher's contract keeps them unchanged until the
// record is settled.
func newOutgoingRecord(topic string, m *transport.Outgoing) *outgoingRecord {
	o := outgoingRecords.Get().(*outgoingRecord)
	o.rec = kgo.Record{Topic: topic, Value: m.Payload, Timestamp: m.Time, Context: o}
	if len(m.Key) > 0 {
		o.rec.Key = m.Key
	}
	headers := o.headers[:0]
	if len(m.Headers)+1 > outgoingHeaders {
		headers = make([]kgo.RecordHeader, 0, len(m.Headers)+1)
	}
	headers = append(headers, kgo.RecordHeader{Key: UUIDHeader, Value: m.ID})
	if !anyRepeatedKey(m.Headers) {
		for _, h := range m.Headers {
			if h.Key != UUIDHeader { // the message's own id wins over a copied one
				headers = append(headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
		}
		o.rec.Headers = headers
		return o
	}
	var repeats []repeated[[]byte]
	has := func(k string) bool {
		return slices.ContainsFunc(m.Headers, func(h transport.Header) bool { return h.Key == k })
	}
	same := func(v []byte) []byte { return v }
	for _, h := range m.Headers {
		headers, repeats = appendHeader(headers, repeats, h.Key, h.Value, has, same)
	}
	o.rec.Headers = appendRepeats(headers, repeats, same)
	return o
}

// outgoingRecords holds the outgoingRecords settled, for newOutgoingRecord to reuse.
var outgoingRecords = sync.Pool{New: func() any { return &outgoingRecord{Context: context.Background()} }}

// release gives o back to outgoingRecords, keeping neither the payload nor the
// callback's state alive. headers is left as it is: newOutgoingRecord writes it before
// the record reads it, and its values are the bytes of pooled sends or of topics. The
// embedded Context stays as it is.
func (o *outgoingRecord) release() {
	o.rec, o.t, o.done = kgo.Record{}, nil, nil
	outgoingRecords.Put(o)
}

// anyRepeatedKey reports whether a header key may name a repeat of another
// ("key[n]", metadata.RepeatedKey): only then does newOutgoingRecord need appendHeader.
func anyRepeatedKey(hs []transport.Header) bool {
	for _, h := range hs {
		if k := h.Key; len(k) > 0 && k[len(k)-1] == ']' {
			return true
		}
	}
	return false
}

// settleOutgoing is the producer's callback of every record of PublishOutgoingAsync.
func settleOutgoing(r *kgo.Record, err error) {
	o := r.Context.(*outgoingRecord)
	t, done, topic := o.t, o.done, r.Topic
	o.release() // franz-go is done with the record; the bytes it referred to are done's
	if isUnknownTopic(err) {
		t.topics.forget(topic) // the next publish provisions it again
	}
	done.Settle(t.produceError(topic, err))
}
