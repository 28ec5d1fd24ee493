package kafka

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// balancers are the client-side balancers Config.Balancer may list, by protocol name.
var balancers = map[string]func() kgo.GroupBalancer{
	BalancerCooperativeSticky: kgo.CooperativeStickyBalancer,
	BalancerRange:             kgo.RangeBalancer,
	BalancerRoundRobin:        kgo.RoundRobinBalancer,
}

// checkBalancers validates a Config.Balancer already lowercased and without spaces:
// one known balancer, or several distinct client-side ones separated by commas.
func checkBalancers(list string) error {
	if list == BalancerKIP848 {
		return nil
	}
	names := strings.Split(list, ",")
	for i, name := range names {
		switch {
		case name == BalancerKIP848:
			return fmt.Errorf("balancer %q: kip848 (server-side assignment) cannot be listed with other balancers", list)
		case balancers[name] == nil:
			return fmt.Errorf("balancer %q: %q is not cooperative-sticky, range, roundrobin or kip848", list, name)
		case slices.Contains(names[:i], name):
			return fmt.Errorf("balancer %q lists %s twice", list, name)
		}
	}
	return nil
}
