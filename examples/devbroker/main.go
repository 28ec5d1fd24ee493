// Devbroker runs a local Kafka-protocol cluster for development, with no Docker and no
// Java: three brokers in one process (franz-go's kfake), on 127.0.0.1. It prints the
// URL to give pubsubkit and runs until interrupted.
//
//	go run ./examples/devbroker                    # ports 9092-9094, nothing kept
//	go run ./examples/devbroker -data ./.kafka     # keep topics, messages and offsets
//	PUBSUB_URL=kafka://127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 go run ./examples/quickstart
//
// It speaks the real protocol, so any Kafka client works against it, but it is not
// Kafka: replication is simulated (one copy of each log), so it shows whether a program
// works, not how it survives a broker failure. For that, use docker-compose.yml.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	if err := run(signalContext(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devbroker:", err)
		os.Exit(1)
	}
}

func signalContext() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return ctx
}

// run starts the cluster, prints its URL to out and serves until ctx ends.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("devbroker", flag.ContinueOnError)
	port := fs.Int("port", 9092, "port of the first broker; the others take the next ones (0: any free ports)")
	brokers := fs.Int("brokers", 3, "number of brokers (3 allows the production replication factor)")
	data := fs.String("data", "", "folder that keeps topics, messages and committed offsets across restarts (empty: keep nothing)")
	minSession := fs.Duration("min-session-timeout", 6*time.Second, "shortest consumer group session timeout the brokers accept (Kafka's group.min.session.timeout.ms)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *brokers < 1 {
		return fmt.Errorf("-brokers %d: want at least 1", *brokers)
	}
	opts := []kfake.Opt{kfake.NumBrokers(*brokers), kfake.GroupMinSessionTimeout(*minSession)}
	if *port != 0 {
		ports := make([]int, *brokers)
		for i := range ports {
			ports[i] = *port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	if *data != "" {
		if err := os.MkdirAll(*data, 0o755); err != nil {
			return err
		}
		opts = append(opts, kfake.DataDir(*data))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("starting the cluster: %w", err)
	}
	defer cluster.Close()

	// kfake drops a group member whose rejoin it holds longer than the member's
	// session timeout (10s by default); a rebalance timeout under two thirds of it
	// keeps restarts quick (see kafka.Config.RebalanceTimeout).
	url := "kafka://" + strings.Join(cluster.ListenAddrs(), ",") + "?rebalance_timeout=5s"
	if *brokers < 3 {
		url += fmt.Sprintf("&replication_factor=%d&min_insync_replicas=1", *brokers)
	}
	fmt.Fprintf(out, "PUBSUB_URL=%s\n", url)
	if *data != "" {
		fmt.Fprintf(out, "keeping data in %s\n", *data)
	}
	<-ctx.Done()
	return nil
}
