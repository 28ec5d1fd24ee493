package reliability

import (
	"strconv"

	"github.com/pubsubkit/pubsub"
)

// OrderPlaced is the event of the outbox scenarios: the producer program writes an
// order row and this event in one transaction.
type OrderPlaced struct {
	Order    int64  `json:"order"`
	Customer string `json:"customer"`
}

// OrderTopic returns the outbox scenarios' topic of that name, keyed by customer.
func OrderTopic(name string) pubsub.Topic[OrderPlaced] {
	return pubsub.NewTopic[OrderPlaced](name, pubsub.WithKey(func(o OrderPlaced) string { return o.Customer }))
}

// Customer returns the customer of order n: one of ten.
func Customer(n int64) string { return "customer-" + strconv.FormatInt(n%10, 10) }

// RolledBack reports whether the producer program rolls order n back instead of
// committing it: every fifth order.
func RolledBack(n int64) bool { return n%5 == 0 }
