package console

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pubsubkit/pubsub"
)

// subscriptionRow is one line of the index page.
type subscriptionRow struct {
	pubsub.SubscriptionHealth
	PartitionList string
	Rate          string // messages finished per second since the previous look
	Pending       int    // dead letters; -1 when they could not be read
}

func (h *console) index(w http.ResponseWriter, r *http.Request) {
	var rows []subscriptionRow
	for _, s := range h.c.Health() {
		row := subscriptionRow{SubscriptionHealth: s, Rate: h.rates.sample(s), Pending: -1}
		var parts []string
		for _, p := range s.Partitions {
			parts = append(parts, strconv.Itoa(int(p.Partition)))
		}
		row.PartitionList = strings.Join(parts, ", ")
		if letters, err := h.c.DeadLetters(r.Context(), s.Topic, s.Group); err == nil {
			row.Pending = len(letters)
		}
		rows = append(rows, row)
	}
	h.render(w, r, http.StatusOK, "index", map[string]any{"Subscriptions": rows, "History": h.c.HistoryEnabled()})
}

// filterForm is the filter of the subscription page, as the form sends it.
type filterForm struct {
	Reason, Key, CorrelationID, Since, Until string
}

// filterFormOf reads the filter of a request (the page's query, or a form posted).
func filterFormOf(r *http.Request) filterForm {
	return filterForm{Reason: r.FormValue("reason"), Key: r.FormValue("key"), CorrelationID: r.FormValue("cid"),
		Since: r.FormValue("since"), Until: r.FormValue("until")}
}

// query is the subscription page's query for the filter.
func (f filterForm) query(topic, group string) url.Values {
	q := url.Values{"topic": {topic}, "group": {group}}
	for _, kv := range [][2]string{{"reason", f.Reason}, {"key", f.Key}, {"cid", f.CorrelationID}, {"since", f.Since}, {"until", f.Until}} {
		if kv[1] != "" {
			q.Set(kv[0], kv[1])
		}
	}
	return q
}

// String says what the filter keeps, for a confirmation: `reason contains "x", key
// = "y"`, or "" for no filter.
func (f filterForm) String() string {
	var parts []string
	for _, kv := range [][2]string{{"reason contains", f.Reason}, {"key =", f.Key}, {"correlation id =", f.CorrelationID},
		{"failed since", f.Since}, {"failed before", f.Until}} {
		if kv[1] != "" {
			parts = append(parts, fmt.Sprintf("%s %q", kv[0], kv[1]))
		}
	}
	return strings.Join(parts, ", ")
}

func (f filterForm) filters() ([]pubsub.DeadLetterFilter, error) {
	q := pubsub.DeadLetterQuery{Reason: f.Reason, Key: f.Key, CorrelationID: f.CorrelationID}
	for _, t := range []struct {
		name, value string
		at          *time.Time
	}{{"since", f.Since, &q.Since}, {"until", f.Until, &q.Until}} {
		if t.value == "" {
			continue
		}
		at, err := parseFormTime(t.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a time (want 2006-01-02T15:04, UTC)", t.name, t.value)
		}
		*t.at = at
	}
	return q.Filters(), nil
}

// parseFormTime reads a datetime-local input (taken as UTC) or an RFC 3339 time.
func parseFormTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time")
}

func (h *console) subscription(w http.ResponseWriter, r *http.Request) {
	topic, group := r.FormValue("topic"), r.FormValue("group")
	f := filterFormOf(r)
	data := map[string]any{"Topic": topic, "Group": group, "Filter": f, "Query": template.URL(f.query(topic, group).Encode())}
	for _, s := range h.c.Health() {
		if s.Topic == topic && s.Group == group {
			data["Health"] = s
		}
	}
	filters, err := f.filters()
	q := pubsub.PageQuery{Cursor: r.FormValue("after")}
	if size := r.FormValue("size"); err == nil && size != "" {
		if q.Size, err = strconv.Atoi(size); err != nil || q.Size < 1 || q.Size > pubsub.MaxPageSize {
			err = fmt.Errorf("size: %q is not a page size (1 to %d)", size, pubsub.MaxPageSize)
		}
	}
	if err != nil {
		data["Error"] = err.Error()
		h.render(w, r, http.StatusBadRequest, "subscription", data)
		return
	}
	page, err := h.c.DeadLetterPage(r.Context(), topic, group, q, filters...)
	if err != nil {
		data["Error"] = err.Error()
		h.render(w, r, statusOf(err), "subscription", data)
		return
	}
	data["Page"], data["Letters"], data["Groups"], data["Later"] = page, page.Letters, page.Groups, q.Cursor != ""
	if page.Next != "" {
		next := f.query(topic, group)
		next.Set("after", page.Next)
		if q.Size != 0 {
			next.Set("size", strconv.Itoa(q.Size))
		}
		data["NextQuery"] = template.URL(next.Encode()) // already escaped, as a query
	}
	h.render(w, r, http.StatusOK, "subscription", data)
}

func (h *console) letter(w http.ResponseWriter, r *http.Request) {
	topic, group, id := r.FormValue("topic"), r.FormValue("group"), r.FormValue("id")
	h.showLetter(w, r, topic, group, id, nil, "")
}

// showLetter renders one pending letter; edited and editErr are an edit that failed.
func (h *console) showLetter(w http.ResponseWriter, r *http.Request, topic, group, id string, edited []byte, editErr string) {
	data := map[string]any{"Topic": topic, "Group": group, "ID": id}
	// The letter's place in the dead-letter topic, as the list links to it: read
	// there alone; without it (or when it is stale) the topic is read.
	partition, offset := int64(0), int64(-1)
	if p, o := r.FormValue("p"), r.FormValue("o"); p != "" && o != "" {
		var perr, oerr error
		partition, perr = strconv.ParseInt(p, 10, 32)
		offset, oerr = strconv.ParseInt(o, 10, 64)
		if perr != nil || oerr != nil {
			partition, offset = 0, -1
		}
	}
	l, err := h.c.DeadLetterAt(r.Context(), topic, group, id, int32(partition), offset)
	if err != nil {
		data["Error"] = err.Error()
		h.render(w, r, statusOf(err), "letter", data)
		return
	}
	pretty, isJSON := prettyPayload(l.Payload)
	keys := make([]string, 0, len(l.Metadata))
	for k := range l.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	status := http.StatusOK
	edit := pretty
	if edited != nil {
		edit, status = string(edited), http.StatusUnprocessableEntity
	}
	data["Position"] = url.Values{"p": {strconv.Itoa(int(l.LetterPartition))}, "o": {strconv.FormatInt(l.LetterOffset, 10)}}.Encode()
	data["Letter"], data["Payload"], data["JSON"], data["HeaderKeys"] = l, pretty, isJSON, keys
	data["Edit"], data["EditError"] = edit, editErr
	h.render(w, r, status, "letter", data)
}

func (h *console) history(w http.ResponseWriter, r *http.Request) {
	cid := strings.TrimSpace(r.FormValue("cid"))
	data := map[string]any{"CID": cid, "Enabled": h.c.HistoryEnabled()}
	if cid != "" {
		var rows []map[string]any
		for _, e := range h.c.History(cid) {
			msg := ""
			if e.Err != nil {
				msg = e.Err.Error()
			}
			rows = append(rows, map[string]any{"Event": e, "Error": msg})
		}
		data["Events"] = rows
	}
	h.render(w, r, http.StatusOK, "history", data)
}

func statusOf(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, pubsub.ErrNoDeadLetter), isUnknown(err):
		return http.StatusNotFound
	case isInvalid(err):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// rates remembers how far each subscription had got, to show its rate.
type rates struct {
	mu   sync.Mutex
	last map[string]rateSample
}

type rateSample struct {
	at        time.Time
	committed int64
	rate      string
}

func newRates() *rates { return &rates{last: map[string]rateSample{}} }

// sample returns the messages per second the subscription finished since it was last
// sampled at least a second ago, or "—" the first time.
func (r *rates) sample(s pubsub.SubscriptionHealth) string {
	var committed int64
	for _, p := range s.Partitions {
		if p.Committed > 0 {
			committed += p.Committed
		}
	}
	key := s.Topic + "\x00" + s.Group
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, ok := r.last[key]
	if !ok {
		r.last[key] = rateSample{at: now, committed: committed, rate: "—"}
		return "—"
	}
	if now.Sub(prev.at) < time.Second {
		return prev.rate
	}
	rate := fmt.Sprintf("%.1f/s", float64(max(committed-prev.committed, 0))/now.Sub(prev.at).Seconds())
	r.last[key] = rateSample{at: now, committed: committed, rate: rate}
	return rate
}
