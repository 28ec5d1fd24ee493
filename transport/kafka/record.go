package kafka

import (
	"cmp"
	"slices"
	"strconv"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport/internal/lane"
)

// UUIDHeader is the record header that carries a message's id: watermill-kafka's, so
// that services still on watermill-kafka read our records and we read theirs.
const UUIDHeader = "_watermill_message_uuid"

// toRecord turns a Watermill message into a Kafka record: the payload as the value,
// metadata.Key, when set, as the record key (which chooses the partition; it is not
// also written as a header), the message id in UUIDHeader and every other metadata
// entry as a header. An entry "k[n]" (metadata.RepeatedKey) beside an entry "k" is
// written as one more header "k", after k's value and in the order of n, so that a
// header a record carried several times is written back as it was read.
func toRecord(topic string, msg *message.Message) *kgo.Record {
	// One buffer holds the id, the key and every header value, sliced for each: one
	// allocation, not one per header.
	size := len(msg.UUID)
	for k, v := range msg.Metadata {
		if k != UUIDHeader {
			size += len(v)
		}
	}
	buf := make([]byte, 0, size)
	bytesOf := func(v string) []byte {
		start := len(buf)
		buf = append(buf, v...)
		return buf[start:len(buf):len(buf)]
	}
	r := &kgo.Record{Topic: topic, Value: msg.Payload, Headers: make([]kgo.RecordHeader, 0, len(msg.Metadata)+1)}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: UUIDHeader, Value: bytesOf(msg.UUID)})
	var repeats []repeated[string]
	has := func(k string) bool { _, ok := msg.Metadata[k]; return ok }
	for k, v := range msg.Metadata {
		if k == metadata.Key {
			if v != "" {
				r.Key = bytesOf(v)
			}
			continue
		}
		r.Headers, repeats = appendHeader(r.Headers, repeats, k, v, has, bytesOf)
	}
	r.Headers = appendRepeats(r.Headers, repeats, bytesOf)
	return r
}

// appendHeader appends the metadata entry k=v to headers as a record header, the one
// mapping both record builders use: the id header is skipped (the message's own id
// wins over a copied one), and a key "base[n]" whose base is in the metadata too (has)
// is the n-th repeat of base, kept in repeats for appendRepeats.
func appendHeader[V string | []byte](headers []kgo.RecordHeader, repeats []repeated[V], k string, v V,
	has func(string) bool, bytesOf func(V) []byte) ([]kgo.RecordHeader, []repeated[V]) {
	if k == UUIDHeader {
		return headers, repeats
	}
	if len(k) > 0 && k[len(k)-1] == ']' {
		if base, n, ok := metadata.SplitRepeatedKey(k); ok && has(base) {
			return headers, append(repeats, repeated[V]{key: base, n: n, value: v})
		}
	}
	return append(headers, kgo.RecordHeader{Key: k, Value: bytesOf(v)}), repeats
}

// appendRepeats appends the repeated headers after the others, each key's in order.
func appendRepeats[V string | []byte](headers []kgo.RecordHeader, repeats []repeated[V], bytesOf func(V) []byte) []kgo.RecordHeader {
	if len(repeats) > 0 {
		slices.SortFunc(repeats, func(a, b repeated[V]) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.n, b.n)) })
		for _, rp := range repeats {
			headers = append(headers, kgo.RecordHeader{Key: rp.key, Value: bytesOf(rp.value)})
		}
	}
	return headers
}

// repeated is a later value of a header key, read from the metadata entry
// metadata.RepeatedKey(key, n): a string from a Watermill message, the bytes of a
// transport.Outgoing.
type repeated[V string | []byte] struct {
	key   string
	n     int
	value V
}

// recordSize is an upper bound of r's encoded size, for the max_message_bytes check.
func recordSize(r *kgo.Record) int {
	n := 32 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// toMessage turns a record into a Watermill message for one delivery. It never fails:
// anything a record holds becomes a message, and a bad payload fails later, in the
// client's decode step, where it is dead-lettered instead of stalling its partition.
// The payload is the record's value, shared by every delivery of the record, and so
// are the bytes of the key and the header values: the metadata's strings are views of
// the record's bytes, not copies (franz-go decodes each fetch into a buffer of its
// own that nothing writes again; the transport sets no franz-go pool that would
// recycle it).
//
// Headers become metadata. A header key the record carries more than once keeps its
// first value under its name and each later one, in record order, under
// metadata.RepeatedKey(name, n) for n = 1, 2...; metadata.Values reads them all. The
// record key, when not empty, is metadata.Key; a "pubsub_key" header (earlier
// pubsubkit versions wrote the key there too) is ignored. handled makes a message for a
// lane that runs the handler itself (see lane.NewMessage).
func toMessage(r *kgo.Record, handled bool) *message.Message {
	key := view(r.Key)
	msg := lane.NewMessage("", r.Value, handled, len(r.Headers)+1) // the headers and the key
	md := msg.Metadata
	var repeats map[string]int // the last n given to each repeated key: made on the first repeat
	for _, h := range r.Headers {
		v := view(h.Value)
		switch h.Key {
		case UUIDHeader:
			if msg.UUID == "" {
				msg.UUID = v
			}
			continue
		case metadata.Key:
			continue
		}
		k := h.Key
		if _, seen := md[k]; seen {
			if repeats == nil {
				repeats = map[string]int{}
			}
			k = nextRepeatedKey(md, k, repeats)
		}
		md[k] = v
	}
	if msg.UUID == "" {
		// A record from a producer outside pubsubkit: its position names it uniquely
		// and stays the same on redelivery.
		msg.UUID = r.Topic + "-" + strconv.Itoa(int(r.Partition)) + "-" + strconv.FormatInt(r.Offset, 10)
	}
	if key != "" {
		md[metadata.Key] = key
	}
	return msg
}

// view is b as a string without a copy; b must never change again (a record's bytes
// do not).
func view(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// nextRepeatedKey is the first metadata.RepeatedKey(key, n) not yet in md, for n
// after the one it gave key last (repeats holds those). Counting on from there instead
// of from 1 keeps a record's headers linear to read: each n is tried once per record,
// so a record that repeats one key 100,000 times costs 100,000 steps, not 5·10⁹.
func nextRepeatedKey(md message.Metadata, key string, repeats map[string]int) string {
	for n := repeats[key] + 1; ; n++ {
		if k := metadata.RepeatedKey(key, n); !has(md, k) {
			repeats[key] = n
			return k
		}
	}
}

func has(md message.Metadata, k string) bool {
	_, ok := md[k]
	return ok
}
