package middleware_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/middleware"
)

// TestCorrelationIDSpellings: the CorrelationID stage takes the id from any spelling,
// puts it and the spelling in the context, and gives the messages a handler returns
// the id under correlation_id and that spelling; a message with correlation_id only
// passes on no other spelling.
func TestCorrelationIDSpellings(t *testing.T) {
	for _, spelling := range append([]string{metadata.CorrelationID}, middleware.CorrelationHeaders[:]...) {
		msg := message.NewMessage("m1", nil)
		msg.Metadata[spelling] = "conv-1"
		var header, id string
		produced, err := middleware.CorrelationID(func(m *message.Message) ([]*message.Message, error) {
			id = middleware.CorrelationIDFromContext(m.Context())
			header = middleware.CorrelationHeaderFromContext(m.Context())
			return []*message.Message{message.NewMessage("out", nil)}, nil
		})(msg)
		if err != nil {
			t.Fatal(err)
		}
		wantHeader := spelling
		if spelling == metadata.CorrelationID {
			wantHeader = ""
		}
		if id != "conv-1" || header != wantHeader {
			t.Errorf("%s: context has id %q and header %q, want conv-1 and %q", spelling, id, header, wantHeader)
		}
		out := produced[0].Metadata
		if out[metadata.CorrelationID] != "conv-1" || out[spelling] != "conv-1" || len(out) != len(map[string]bool{metadata.CorrelationID: true, spelling: true}) {
			t.Errorf("%s: the returned message's metadata %v, want conv-1 under correlation_id and %s only", spelling, out, spelling)
		}
		if got := msg.Metadata[metadata.CorrelationID]; got != "conv-1" {
			t.Errorf("%s: the message's correlation_id %q after the stage", spelling, got)
		}
	}
}
