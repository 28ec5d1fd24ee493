package pubsub

import (
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/pubsubkit/pubsub/metadata"
)

// WithCloudEvents makes the topic publish its messages as CloudEvents in binary mode,
// as the CloudEvents Kafka protocol binding defines it (what a Knative Kafka broker
// stores): headers ce_specversion "1.0", ce_id (the message id), ce_type (the
// message's Go type), ce_source (source), ce_time (the publish time), and the standard
// content-type; the payload is the event's data. Every topic reads CloudEvents in
// both modes, with or without this option.
func WithCloudEvents(source string) TopicOption {
	return func(o *topicOptions) { o.cloudEvents = &source }
}

// setCloudEventsAttributes writes msg's CloudEvents attributes in binary mode.
func setCloudEventsAttributes(msg *message.Message, source string) {
	md := msg.Metadata
	metadata.SetCloudEvent(md, msg.UUID, source, md[metadata.MessageType])
	md[metadata.CloudEventsTime] = md[metadata.PublishedAt] // both RFC 3339 in UTC (metadata.FormatTime)
}

// event is what Decode reads of a message: its payload and content type, and the
// CloudEvents attributes when the message is a CloudEvent.
type event struct {
	payload     []byte
	contentType string
	id          string            // the CloudEvents id; "" when not a CloudEvent
	attributes  map[string]string // ce_<name> → value, in binary mode's form
}

// readEvent reads msg as an event. A structured-mode CloudEvent (content type
// application/cloudevents+json) is unwrapped: its data is the payload, its
// datacontenttype the content type, its attributes and extensions ce_ keys, so that
// it is never decoded as the payload type itself. A binary-mode CloudEvent (a
// ce_specversion header) is read as it is.
func readEvent(msg *message.Message) (event, error) {
	ct := metadata.ContentTypeOf(msg.Metadata)
	if metadata.MediaType(ct) != metadata.StructuredCloudEvent {
		e := event{payload: msg.Payload, contentType: ct}
		if msg.Metadata[metadata.CloudEventsSpec] != "" {
			e.id = msg.Metadata[metadata.CloudEventsID]
		}
		return e, nil
	}
	var ce cloudevents.Event
	if err := ce.UnmarshalJSON(msg.Payload); err != nil {
		return event{}, fmt.Errorf("a structured CloudEvent that does not parse: %w", err)
	}
	e := event{payload: ce.Data(), contentType: ce.DataContentType(), id: ce.ID(), attributes: map[string]string{
		metadata.CloudEventsSpec:   ce.SpecVersion(),
		metadata.CloudEventsID:     ce.ID(),
		metadata.CloudEventsSource: ce.Source(),
		metadata.CloudEventsType:   ce.Type(),
	}}
	if !ce.Time().IsZero() {
		e.attributes[metadata.CloudEventsTime] = metadata.FormatTime(ce.Time())
	}
	if s := ce.Subject(); s != "" {
		e.attributes[metadata.CloudEventsPrefix+"subject"] = s
	}
	if s := ce.DataSchema(); s != "" {
		e.attributes[metadata.CloudEventsPrefix+"dataschema"] = s
	}
	for name, v := range ce.Extensions() {
		e.attributes[metadata.CloudEventsPrefix+strings.ToLower(name)] = fmt.Sprint(v)
	}
	return e, nil
}
