package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/console"
)

// manyLetters returns a viewer's HTTP client and the address of a console whose
// subscription holds n dead letters (ten keys, ten reasons), on the memory transport.
func manyLetters(b *testing.B, n int) (*http.Client, string, *pubsub.Client, string) {
	b.Helper()
	c, err := pubsub.Open(context.Background(), "memory://")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	name := fmt.Sprintf("bench-%d", n)
	orders := pubsub.NewTopic[payment](name, pubsub.WithKey(func(p payment) string { return p.ID }))
	err = pubsub.Subscribe(c, orders, group, func(_ context.Context, m *pubsub.Message[payment]) error {
		return pubsub.Permanent(fmt.Errorf("order %d of %s not found", m.Payload.Amount, m.Payload.ID))
	})
	if err != nil {
		b.Fatal(err)
	}
	runClient(b, c)
	batch := make([]payment, n)
	for i := range batch {
		batch[i] = payment{ID: "cust-" + strconv.Itoa(i%10), Amount: i}
	}
	if err := pubsub.PublishBatch(context.Background(), c, orders, batch); err != nil {
		b.Fatal(err)
	}
	for {
		letters, err := c.DeadLetters(context.Background(), name, group)
		if err != nil {
			b.Fatal(err)
		}
		if len(letters) == n {
			break
		}
	}
	h, err := console.Handler(c, console.WithToken("admin-tok"), console.WithViewerToken("viewer-tok"))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	cl := &http.Client{Jar: newJar()}
	resp, err := cl.PostForm(srv.URL+"/login", map[string][]string{"token": {"viewer-tok"}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return cl, srv.URL, c, name
}

func get(b *testing.B, cl *http.Client, url string) int {
	resp, err := cl.Get(url)
	if err != nil {
		b.Error(err)
		return 0
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return int(n)
}

// BenchmarkSubscriptionPage10k loads the dead-letter page of a subscription with
// 10,000 pending letters: time, allocation and the page's size per load.
func BenchmarkSubscriptionPage10k(b *testing.B) {
	cl, base, _, name := manyLetters(b, 10000)
	url := base + "/subscription?topic=" + name + "&group=" + group
	size := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		size = get(b, cl, url)
	}
	b.ReportMetric(float64(size), "page-bytes")
}

// BenchmarkLetterPage10k loads one letter's page among 10,000 pending letters,
// following the link the subscription page gives.
func BenchmarkLetterPage10k(b *testing.B) {
	cl, base, c, name := manyLetters(b, 10000)
	resp, err := cl.Get(base + "/subscription?topic=" + name + "&group=" + group)
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, link, ok := strings.Cut(string(page), `class="letter" href="`)
	if !ok {
		b.Fatal("no letter link")
	}
	link, _, _ = strings.Cut(link, `"`)
	link = strings.ReplaceAll(link, "&amp;", "&")
	_ = c
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		get(b, cl, base+"/"+link)
	}
}

// BenchmarkParallelViewers32 loads the dead-letter page of 10,000 letters 32 times
// at once and reports the process's peak resident memory (VmHWM) afterwards: run it
// alone (-bench ParallelViewers32 -benchtime 1x) for the figure to mean anything.
func BenchmarkParallelViewers32(b *testing.B) {
	cl, base, _, name := manyLetters(b, 10000)
	url := base + "/subscription?topic=" + name + "&group=" + group
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() { get(b, cl, url) })
		}
		wg.Wait()
	}
	b.StopTimer()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status: peak RSS not reported")
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			b.ReportMetric(float64(kb)/1024, "peak-RSS-MiB")
		}
	}
}

func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}
