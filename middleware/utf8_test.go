package middleware_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
)

// capture is a Publisher that keeps what it is given.
type capture struct{ msgs []*message.Message }

func (c *capture) Publish(_ string, msgs ...*message.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}
func (c *capture) Close() error { return nil }

// TestDeadLetterReasonIsValidUTF8: an error whose text holds bytes that are not UTF-8
// is recorded with each bad run replaced by U+FFFD, in a plain dead letter's reason and
// in a Knative dead letter's reason and error data alike.
func TestDeadLetterReasonIsValidUTF8(t *testing.T) {
	for _, knative := range []bool{false, true} {
		pub := &capture{}
		dl, err := middleware.DeadLetter(middleware.DeadLetterConfig{Publisher: pub, Topic: "dlq", Group: "g", Knative: knative})
		if err != nil {
			t.Fatal(err)
		}
		h := dl(func(*message.Message) ([]*message.Message, error) {
			return nil, middleware.Permanent(errors.New("bad bytes \xff\xfe in input"))
		})
		if _, err := h(message.NewMessage("id-1", []byte("{}"))); err != nil {
			t.Fatalf("knative=%v: %v", knative, err)
		}
		if len(pub.msgs) != 1 {
			t.Fatalf("knative=%v: %d dead letters", knative, len(pub.msgs))
		}
		md := pub.msgs[0].Metadata
		if got, want := md.Get(metadata.DeadLetterReason), "bad bytes \uFFFD in input"; got != want {
			t.Errorf("knative=%v: reason %q, want %q", knative, got, want)
		}
		for k, v := range md {
			if !utf8.ValidString(v) {
				t.Errorf("knative=%v: header %s = %q is not valid UTF-8", knative, k, v)
			}
		}
		if knative {
			data, err := base64.StdEncoding.DecodeString(md.Get(metadata.KnativeErrorData))
			if err != nil || string(data) != "bad bytes \uFFFD in input" {
				t.Errorf("knative error data %q (%v), want the valid UTF-8 reason", data, err)
			}
		}
	}
}
