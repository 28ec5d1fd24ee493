package kafka

import (
	"context"
	"fmt"
	"slices"

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
	o.rec.Context = ctx
	return t.produceError(topic, t.producer.ProduceSync(ctx, &o.rec).FirstErr())
}

// outgoingRecord is newOutgoingRecord, or an error wrapping kerr.MessageTooLarge when
// the record is larger than MaxMessageBytes.
func (t *Transport) outgoingRecord(topic string, m *transport.Outgoing) (*outgoingRecord, error) {
	o := newOutgoingRecord(topic, m)
	if n := recordSize(&o.rec); n > t.cfg.MaxMessageBytes {
		return nil, fmt.Errorf("message %s of about %d bytes exceeds max_message_bytes (%d bytes): %w", m.ID, n, t.cfg.MaxMessageBytes, kerr.MessageTooLarge)
	}
	return o, nil
}

// outgoingHeaders is how many headers an outgoingRecord holds without a slice of its
// own: the id and pubsubkit's four keys, and room for a correlation header and two
// entries of WithMetadata.
const outgoingHeaders = 8

// outgoingRecord is a record, room for its headers and what its callback needs, in
// one allocation. It is the record's Context (a background context: once queued, a
// record does not depend on the publisher's ctx), so that settleOutgoing, one function
// for every record, finds it again.
type outgoingRecord struct {
	context.Context
	rec     kgo.Record
	headers [outgoingHeaders]kgo.RecordHeader
	t       *Transport
	done    transport.Settler
	// small holds the id, the key and the header values when they fit: most
	// messages then need no buffer of their own.
	small [outgoingSmall]byte
}

// outgoingSmall is how many bytes of id, key and header values an outgoingRecord
// holds itself: pubsubkit's own headers take about 150.
const outgoingSmall = 256

// newOutgoingRecord writes m as toRecord writes a message: the payload as the value,
// the key as the record key, the id in UUIDHeader, then every header in m's order. The
// id, the key and the header values are copied into one buffer, sliced for each.
func newOutgoingRecord(topic string, m *transport.Outgoing) *outgoingRecord {
	size := len(m.ID) + len(m.Key)
	for _, h := range m.Headers {
		size += len(h.Value)
	}
	o := &outgoingRecord{Context: context.Background()}
	buf := o.small[:0]
	if size > outgoingSmall {
		buf = make([]byte, 0, size)
	}
	bytesOf := func(v string) []byte {
		start := len(buf)
		buf = append(buf, v...)
		return buf[start:len(buf):len(buf)]
	}
	o.rec = kgo.Record{Topic: topic, Value: m.Payload, Context: o}
	headers := o.headers[:0]
	if len(m.Headers)+1 > outgoingHeaders {
		headers = make([]kgo.RecordHeader, 0, len(m.Headers)+1)
	}
	headers = append(headers, kgo.RecordHeader{Key: UUIDHeader, Value: bytesOf(m.ID)})
	var repeats []repeated
	has := func(k string) bool {
		return slices.ContainsFunc(m.Headers, func(h transport.Header) bool { return h.Key == k })
	}
	for _, h := range m.Headers {
		headers, repeats = appendHeader(headers, repeats, h.Key, h.Value, has, bytesOf)
	}
	o.rec.Headers = appendRepeats(headers, repeats, bytesOf)
	if m.Key != "" {
		o.rec.Key = bytesOf(m.Key)
	}
	return o
}

// settleOutgoing is the producer's callback of every record of PublishOutgoingAsync.
func settleOutgoing(r *kgo.Record, err error) {
	o := r.Context.(*outgoingRecord)
	if isUnknownTopic(err) {
		o.t.topics.forget(r.Topic) // the next publish provisions it again
	}
	o.done.Settle(o.t.produceError(r.Topic, err))
}
