package pubsub

import (
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pubsubkit/pubsub/codec"
	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
)

type fuzzOrder struct {
	ID    string            `json:"id"`
	Total int               `json:"total"`
	Tags  []string          `json:"tags"`
	Extra map[string]string `json:"extra"`
}

// FuzzDecode: whatever bytes and metadata arrive, Decode either returns a message or
// a permanent error (which dead-letters it); it never panics, and a decoded
// message's attempt is at least 1.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"o-1","total":5,"tags":["a"]}`), "application/json", "2", "2026-01-02T03:04:05Z", false)
	f.Add([]byte(`{"id":`), "application/json", "x", "", false)
	f.Add([]byte(`[1,2,3]`), "", "-1", "yesterday", false)
	f.Add([]byte("\x0a\x03\x0a\x01a"), "application/x-protobuf", "9999999999999999999999", "", true)
	f.Add([]byte{0xff, 0xfe, 0x00}, "text/plain", "1", "", true)
	jsonTopic := NewTopic[fuzzOrder]("fuzz.json")
	protoTopic := NewTopic[*structpb.Struct]("fuzz.proto", WithCodec(codec.Protobuf))
	f.Fuzz(func(t *testing.T, payload []byte, contentType, attempt, publishedAt string, proto bool) {
		msg := message.NewMessage("id", payload)
		msg.Metadata.Set(metadata.ContentType, contentType)
		msg.Metadata.Set(metadata.Attempt, attempt)
		msg.Metadata.Set(metadata.PublishedAt, publishedAt)
		check := func(attempt int, err error) {
			if err != nil {
				if !middleware.IsPermanent(err) {
					t.Fatalf("a decode failure is not permanent: %v", err)
				}
				return
			}
			if attempt < 1 {
				t.Fatalf("decoded attempt %d", attempt)
			}
		}
		if proto {
			m, err := Decode(protoTopic, msg)
			if err == nil && m.Payload == nil {
				t.Fatal("decoded a nil protobuf payload without an error")
			}
			check(attemptOrZero(m), err)
			return
		}
		m, err := Decode(jsonTopic, msg)
		check(attemptOrZero(m), err)
	})
}

func attemptOrZero[T any](m *Message[T]) int {
	if m == nil {
		return 0
	}
	return m.Attempt
}

// FuzzDeadLetterMetadata: a dead letter's metadata may have been written by anyone
// (another client, a hand-made replay). Reading it never panics, reports a position
// only when both numbers are valid, and a replay made from it starts at attempt 1
// and is marked as a replay.
func FuzzDeadLetterMetadata(f *testing.F) {
	f.Add("3", "2026-01-02T03:04:05.123Z", "2026-01-02T03:04:06Z", "2", "17", "true", "boom")
	f.Add("", "", "", "", "", "", "")
	f.Add("-4", "not a time", "9999-99-99", "2147483648", "-1", "maybe", "\xff")
	f.Add("99999999999999999999", "", "", "x", "12", "TRUE", "")
	f.Fuzz(func(t *testing.T, attempts, first, last, partition, offset, permanent, reason string) {
		dead := message.NewMessage("id", []byte("payload"))
		set := dead.Metadata.Set
		set(metadata.DeadLetterAttempts, attempts)
		set(metadata.DeadLetterFirstFailure, first)
		set(metadata.DeadLetterLastFailure, last)
		set(metadata.DeadLetterPartition, partition)
		set(metadata.DeadLetterOffset, offset)
		set(metadata.DeadLetterPermanent, permanent)
		set(metadata.DeadLetterReason, reason)
		set(metadata.Attempt, attempts)
		d := deadLetterOf(dead)
		if d.Attempts < 0 {
			t.Fatalf("attempts %d from %q", d.Attempts, attempts)
		}
		if d.HasPosition {
			p, perr := strconv.ParseInt(partition, 10, 32)
			o, oerr := strconv.ParseInt(offset, 10, 64)
			if perr != nil || oerr != nil || p < 0 || o < 0 || d.Partition != int32(p) || d.Offset != o {
				t.Fatalf("position %d/%d reported from %q/%q", d.Partition, d.Offset, partition, offset)
			}
		}
		if d.Reason != reason || string(d.Payload) != "payload" {
			t.Fatalf("letter %+v lost its reason or payload", d)
		}
		var zero time.Time
		if _, err := time.Parse(time.RFC3339Nano, first); err != nil && d.FirstFailure != zero {
			t.Fatalf("first failure %v read from %q", d.FirstFailure, first)
		}
		r := replayOf(t.Context(), d, nil)
		if got := metadata.AttemptOf(r.Metadata.Get(metadata.Attempt)); got != 1 {
			t.Fatalf("replay starts at attempt %d", got)
		}
		if r.Metadata.Get(metadata.Replayed) != "true" || r.UUID != dead.UUID || string(r.Payload) != "payload" {
			t.Fatalf("replay %v is not the letter's message marked as replayed", r.Metadata)
		}
	})
}
