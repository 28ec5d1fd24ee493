package pubsub

import (
	"fmt"
	"reflect"

	"github.com/pubsubkit/pubsub/codec"
)

// Topic is a typed topic: its name, the codec for its payloads and an optional function
// that derives a partition key from a value. A Topic is an immutable value, safe to copy
// and to share between goroutines; declare it once, next to T.
type Topic[T any] struct {
	name     string
	codec    codec.Codec
	key      func(T) string
	typeName string  // T's name, for metadata.MessageType and errors
	err      error   // a bad option, reported by Publish and Subscribe
	ceSource *string // publish as binary-mode CloudEvents with this source
	ceType   string  // their ce_type; "" for typeName
	// headers are the content type and typeName as the bytes of their header values,
	// made once for every lean publish of the topic (see outgoing); nil for a topic
	// not made by NewTopic.
	headers *topicHeaders
	named   bool // NewTopic found the name valid: validate need not scan it per publish
}

// TopicOption configures a Topic in NewTopic.
type TopicOption func(*topicOptions)

type topicOptions struct {
	codec       codec.Codec
	key         any
	cloudEvents *string // WithCloudEvents' source
	ceType      *string // WithCloudEventsType's type
}

// WithCodec sets the topic's codec; the default is codec.JSON.
func WithCodec(c codec.Codec) TopicOption {
	return func(o *topicOptions) { o.codec = c }
}

// WithKey sets a function that derives each message's partition key from its value.
// Messages with one key keep their order on transports with partitions. Its type must
// be func(T) string for the topic's T; otherwise Publish and Subscribe on the topic
// return an error wrapping ErrInvalidOption.
func WithKey[T any](key func(T) string) TopicOption {
	return func(o *topicOptions) { o.key = key }
}

// NewTopic declares the topic name carrying values of type T. The name is checked when
// the topic is first used, so a bad name is an error from Publish or Subscribe.
func NewTopic[T any](name string, opts ...TopicOption) Topic[T] {
	o := topicOptions{codec: codec.JSON}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	t := Topic[T]{name: name, codec: o.codec, typeName: typeName[T](), ceSource: o.cloudEvents,
		named: validName("topic", name) == nil}
	if o.ceType != nil {
		t.ceType = *o.ceType
		t.err = checkCloudEventsType(name, o)
	}
	if o.key != nil {
		key, ok := o.key.(func(T) string)
		if !ok {
			t.err = fmt.Errorf("pubsub: %w: topic %q: WithKey takes a func(%s) string, got %T",
				ErrInvalidOption, name, t.typeName, o.key)
		}
		t.key = key
	}
	if o.codec != nil {
		t.headers = &topicHeaders{contentType: []byte(o.codec.ContentType()), typeName: []byte(t.typeName)}
	}
	return t
}

// topicHeaders are the header values every message of a topic carries alike.
type topicHeaders struct {
	contentType, typeName []byte
}

// Name returns the topic's name.
func (t Topic[T]) Name() string { return t.name }

// Codec returns the topic's codec.
func (t Topic[T]) Codec() codec.Codec { return t.codec }

func (t Topic[T]) validate() error {
	if t.err != nil {
		return t.err
	}
	if !t.named {
		if err := validName("topic", t.name); err != nil {
			return err
		}
	}
	if t.codec == nil {
		return fmt.Errorf("pubsub: %w: topic %q has a nil codec", ErrInvalidOption, t.name)
	}
	return nil
}

// validName checks a topic or group name against the characters Kafka allows in topic
// names, since retry and dead-letter topics are built from both.
func validName(what, name string) error {
	if name == "" {
		return fmt.Errorf("pubsub: %w: empty %s name", ErrInvalidOption, what)
	}
	if len(name) > 200 {
		return fmt.Errorf("pubsub: %w: %s name %.20q... is longer than 200 characters", ErrInvalidOption, what, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("pubsub: %w: %s name %q has %q; use letters, digits, '.', '_' and '-'", ErrInvalidOption, what, name, r)
		}
	}
	return nil
}

// typeName names T for metadata and messages, "main.Order" or "*orderpb.Order".
func typeName[T any]() string {
	return reflect.TypeFor[T]().String()
}
