package kafka_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// TestBalancerSetting: balancer= takes one balancer or a list in order of preference
// (any case, spaces ignored), defaults to cooperative-sticky,range, and refuses
// unknown names, repeats and kip848 in a list, naming the problem.
func TestBalancerSetting(t *testing.T) {
	for param, want := range map[string]string{
		"":                             kafka.DefaultBalancer,
		"balancer=range":               "range",
		"balancer=cooperative-sticky":  "cooperative-sticky",
		"balancer=Range,%20RoundRobin": "range,roundrobin",
		"balancer=kip848":              "kip848",
		"balancer=cooperative-sticky,range,roundrobin": "cooperative-sticky,range,roundrobin",
	} {
		u, _ := url.Parse("kafka://b1:9092?" + param)
		c, err := kafka.ParseURL(u)
		if err != nil || c.Balancer != want {
			t.Errorf("%q: Balancer %q, %v; want %q", param, c.Balancer, err, want)
		}
	}
	if kafka.DefaultBalancer != "cooperative-sticky,range" {
		t.Errorf("DefaultBalancer = %q", kafka.DefaultBalancer)
	}
	for param, says := range map[string]string{
		"balancer=sticky":       `"sticky" is not`,
		"balancer=range,range":  "twice",
		"balancer=kip848,range": "kip848",
		"balancer=range,":       `"" is not`,
	} {
		u, _ := url.Parse("kafka://b1:9092?" + param)
		_, err := kafka.ParseURL(u)
		if !errors.Is(err, transport.ErrInvalidOption) || !strings.Contains(err.Error(), says) {
			t.Errorf("%q: %v; want ErrInvalidOption saying %s", param, err, says)
		}
	}
}
