// Package codec turns typed values into message payloads and back.
//
// A [Codec] is chosen per topic (pubsub.WithCodec); [JSON] is the default. The codec's
// content type travels in each message's metadata, so a consumer can refuse a payload
// written by another codec instead of misreading it.
package codec

import "errors"

// Codec marshals values of a topic's type to bytes and back.
//
// Implementations must be safe for concurrent use: one codec serves every publish and
// every delivery of its topic. Marshal must not keep v; Unmarshal must not keep data
// after it returns (the payload buffer may be reused by the transport).
type Codec interface {
	// ContentType names the encoding, for example "application/json". It is stored in
	// the message metadata and compared on decode.
	ContentType() string
	// Marshal encodes v, which is a value of the topic's type T.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, which is a *T.
	Unmarshal(data []byte, v any) error
}

// ErrUnsupportedType is returned when a codec cannot handle the Go type it was given,
// for example Raw with anything but []byte.
var ErrUnsupportedType = errors.New("codec: unsupported type")
