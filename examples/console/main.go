// Command console runs the web console on the memory transport with failures to look
// at: an "orders" topic whose "billing" group fails some orders into dead letters
// (over-limit amounts after one retry, negative amounts at once as permanent), while
// a publisher keeps orders coming. It prints the address and the login token.
//
//	go run ./examples/console [-addr 127.0.0.1:8090]
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/console"
)

// Order is what the example publishes.
type Order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Amount   int    `json:"amount"`
}

var orders = pubsub.NewTopic[Order]("orders", pubsub.WithKey(func(o Order) string { return o.Customer }))

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves the console on addr until ctx is done.
func run(ctx context.Context, addr string, out *os.File) error {
	token := rand.Text()
	c, h, err := setup(token)
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/pubsub/", http.StripPrefix("/pubsub", h))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	go publish(ctx, c)
	fmt.Fprintf(out, "console: http://%s/pubsub/\ntoken:   %s\n", ln.Addr(), token)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-runErr
}

// setup returns a client on memory:// whose "billing" subscription fails some orders,
// already holding a few dead letters' worth of orders, and its console behind token.
func setup(token string) (*pubsub.Client, http.Handler, error) {
	c, err := pubsub.Open(context.Background(), "memory://", pubsub.WithEventHistory(5000))
	if err != nil {
		return nil, nil, err
	}
	err = pubsub.Subscribe(c, orders, "billing", bill,
		pubsub.WithDelivery(pubsub.Delivery{Retry: 1, BackoffDelay: 20 * time.Millisecond}))
	if err == nil {
		err = pubsub.Subscribe(c, orders, "shipping", func(context.Context, *pubsub.Message[Order]) error { return nil })
	}
	var h http.Handler
	if err == nil {
		h, err = console.Handler(c, console.WithToken(token))
	}
	if err != nil {
		return nil, nil, errors.Join(err, c.Close())
	}
	for i := range 12 {
		if err := pubsub.Publish(context.Background(), c, orders, order(i), pubsub.WithCorrelationID(fmt.Sprintf("checkout-%d", i))); err != nil {
			return nil, nil, errors.Join(err, c.Close())
		}
	}
	return c, h, nil
}

// bill fails orders over 1000 (retried once) and negative ones (at once).
func bill(_ context.Context, m *pubsub.Message[Order]) error {
	switch o := m.Payload; {
	case o.Amount < 0:
		return pubsub.Permanent(fmt.Errorf("order %s: negative amount %d", o.ID, o.Amount))
	case o.Amount > 1000:
		return fmt.Errorf("card of customer %s declined: limit exceeded by %d", o.Customer, o.Amount-1000)
	}
	return nil
}

func order(i int) Order {
	amounts := []int{120, 4500, 80, -5, 60, 1200, 30, 2100, 75, -40, 99, 1800}
	return Order{ID: fmt.Sprintf("ord-%04d", i), Customer: fmt.Sprintf("cust-%d", i%5), Amount: amounts[i%len(amounts)]}
}

// publish keeps orders coming, two a second, until ctx is done.
func publish(ctx context.Context, c *pubsub.Client) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for i := 12; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = pubsub.Publish(ctx, c, orders, order(i), pubsub.WithCorrelationID(fmt.Sprintf("checkout-%d", i)))
		}
	}
}
