package codec

import (
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"
)

// Protobuf encodes protocol buffer messages in their binary wire format, for topics
// whose type is a generated message pointer such as *orderpb.Order. Protobuf is safe
// for concurrent use.
var Protobuf Codec = protobufCodec{}

type protobufCodec struct{}

func (protobufCodec) ContentType() string { return "application/x-protobuf" }

func (protobufCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%w: protobuf codec takes a proto.Message, got %T", ErrUnsupportedType, v)
	}
	return proto.Marshal(m)
}

// Unmarshal accepts a proto.Message, or a pointer to a nil message pointer (the *T a
// topic of T = *orderpb.Order decodes into), which it allocates.
func (protobufCodec) Unmarshal(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		return proto.Unmarshal(data, m)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Pointer {
		return fmt.Errorf("%w: protobuf codec decodes into a proto.Message, got %T", ErrUnsupportedType, v)
	}
	target := rv.Elem()
	if target.IsNil() {
		target.Set(reflect.New(target.Type().Elem()))
	}
	m, ok := target.Interface().(proto.Message)
	if !ok {
		return fmt.Errorf("%w: protobuf codec decodes into a proto.Message, got %T", ErrUnsupportedType, v)
	}
	return proto.Unmarshal(data, m)
}
