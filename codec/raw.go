package codec

import "fmt"

// Raw passes []byte payloads through unchanged, for topics whose type is []byte.
// Unmarshal copies the payload, so the value a handler receives is its own. Raw is safe
// for concurrent use.
var Raw Codec = rawCodec{}

type rawCodec struct{}

func (rawCodec) ContentType() string { return "application/octet-stream" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("%w: raw codec takes []byte, got %T", ErrUnsupportedType, v)
	}
	return b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("%w: raw codec decodes into *[]byte, got %T", ErrUnsupportedType, v)
	}
	*p = append([]byte(nil), data...)
	return nil
}
