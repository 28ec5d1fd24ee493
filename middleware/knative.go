package middleware

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/pubsubkit/pubsub/metadata"
)

// knativeErrorDataLimit is how much of the reason a Knative error extension carries
// before base64, as Knative's brokers cut the response body they record.
const knativeErrorDataLimit = 1024

// KnativeDestination names a subscription in a dead letter's knativeerrordest
// extension: "pubsub:<topic>/<group>".
func KnativeDestination(topic, group string) string { return "pubsub:" + topic + "/" + group }

// knativeCode is the HTTP status code Knative would have seen for cause: 504 for an
// attempt that timed out, 422 for a permanent failure (the event cannot be handled),
// 500 otherwise.
func knativeCode(cause error) int {
	switch {
	case errors.Is(cause, ErrAttemptTimeout):
		return 504
	case IsPermanent(cause):
		return 422
	default:
		return 500
	}
}

// asKnativeDeadLetter makes dead a CloudEvent with Knative's error extensions, as a
// Knative broker writes to its dead-letter sink: knativeerrordest (the subscription,
// see KnativeDestination), knativeerrorcode (see knativeCode) and knativeerrordata
// (the reason, cut to 1,024 bytes, base64). A structured-mode event gets them in its
// JSON envelope; any other message becomes (or stays) a binary-mode event, keeping
// its ce_ attributes when it has them and otherwise taking the message id as ce_id,
// its message type as ce_type and dest as ce_source.
func asKnativeDeadLetter(dead *message.Message, dest, reason string, code int) error {
	data := base64.StdEncoding.EncodeToString([]byte(metadata.Cut(reason, knativeErrorDataLimit)))
	md := dead.Metadata
	if metadata.MediaType(metadata.ContentTypeOf(md)) == metadata.StructuredCloudEvent {
		var ev cloudevents.Event
		if err := ev.UnmarshalJSON(dead.Payload); err != nil {
			return fmt.Errorf("a structured CloudEvent that does not parse: %w", err)
		}
		ev.SetExtension("knativeerrordest", dest)
		ev.SetExtension("knativeerrorcode", strconv.Itoa(code))
		ev.SetExtension("knativeerrordata", data)
		b, err := ev.MarshalJSON()
		if err != nil {
			return err
		}
		dead.Payload = b
		return nil
	}
	if md[metadata.CloudEventsSpec] == "" {
		metadata.SetCloudEvent(md, dead.UUID, dest, cmp.Or(md[metadata.MessageType], "dev.pubsubkit.deadletter"))
	}
	md[metadata.KnativeErrorDest] = dest
	md[metadata.KnativeErrorCode] = strconv.Itoa(code)
	md[metadata.KnativeErrorData] = data
	return nil
}
