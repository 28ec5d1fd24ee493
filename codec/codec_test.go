package codec_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/pubsubkit/pubsub/codec"
)

func TestJSONRoundTrip(t *testing.T) {
	type order struct {
		ID    string `json:"id"`
		Total int    `json:"total"`
	}
	b, err := codec.JSON.Marshal(order{ID: "a", Total: 3})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"id":"a","total":3}` {
		t.Fatalf("JSON = %s", b)
	}
	var got order
	if err := codec.JSON.Unmarshal(b, &got); err != nil || got != (order{"a", 3}) {
		t.Fatalf("Unmarshal = %+v, %v", got, err)
	}
	if err := codec.JSON.Unmarshal([]byte("{"), &got); err == nil {
		t.Fatal("truncated JSON decoded without error")
	}
}

func TestRawCopiesAndRefusesOtherTypes(t *testing.T) {
	in := []byte{0, 1, 2}
	b, err := codec.Raw.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	if err := codec.Raw.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	b[0] = 9
	if out[0] != 0 {
		t.Fatal("Unmarshal kept the payload buffer")
	}
	if _, err := codec.Raw.Marshal("text"); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Fatalf("Marshal(string): %v", err)
	}
	var s string
	if err := codec.Raw.Unmarshal(b, &s); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Fatalf("Unmarshal into *string: %v", err)
	}
}

// TestProtobufPointerTopic: a topic of T = *wrapperspb.StringValue decodes into a *T
// that holds a nil pointer, which the codec allocates.
func TestProtobufPointerTopic(t *testing.T) {
	b, err := codec.Protobuf.Marshal(wrapperspb.String("hello"))
	if err != nil {
		t.Fatal(err)
	}
	var got *wrapperspb.StringValue
	if err := codec.Protobuf.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.GetValue() != "hello" {
		t.Fatalf("decoded %q", got.GetValue())
	}
	st, _ := structpb.NewStruct(map[string]any{"n": 1.5})
	b, _ = codec.Protobuf.Marshal(st)
	direct := &structpb.Struct{}
	if err := codec.Protobuf.Unmarshal(b, direct); err != nil || !proto.Equal(direct, st) {
		t.Fatalf("direct decode = %v, %v", direct, err)
	}
	if _, err := codec.Protobuf.Marshal(struct{}{}); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Fatalf("Marshal(non-proto): %v", err)
	}
	if err := codec.Protobuf.Unmarshal([]byte{0xff, 0xff}, &got); err == nil {
		t.Fatal("garbage decoded without error")
	}
}
