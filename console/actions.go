package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/pubsubkit/pubsub"
)

// maxForm bounds a posted form (an edited payload is the largest part).
const maxForm = 8 << 20

// action carries out the change a form posted: replay or discard of the ticked letters
// or of a group of errors, replay of one edited letter, pause and resume. The person's
// identity and the note they typed are recorded with each replay and discard.
func (h *console) action(w http.ResponseWriter, r *http.Request) {
	v := visitorOf(r)
	if !v.canChange() {
		http.Error(w, "console: your role ("+v.role.String()+") may not change anything", http.StatusForbidden)
		return
	}
	topic, group, op := r.PostFormValue("topic"), r.PostFormValue("group"), r.PostFormValue("op")
	back := "subscription?" + url.Values{"topic": {topic}, "group": {group}}.Encode()
	note := strings.TrimSpace(r.PostFormValue("note"))
	ctx := r.Context()
	var msg string
	var err error
	switch op {
	case "pause", "resume":
		if op == "pause" {
			err = h.c.Pause(topic, group)
		} else {
			err = h.c.Resume(topic, group)
		}
		msg = fmt.Sprintf("%s %s: %sd.", topic, group, op)
		if r.PostFormValue("from") == "index" {
			back = "./"
		}
	case "replay", "discard":
		ids := r.PostForm["id"]
		if len(ids) == 0 {
			err = errors.New("tick at least one letter first")
			break
		}
		msg, err = h.resolve(r, topic, group, op, pubsub.ReplayIDs(ids...).Note(v.identity, note))
	case "replay-group", "discard-group":
		op = strings.TrimSuffix(op, "-group")
		f := filterFormOf(r)
		back = "subscription?" + f.query(topic, group).Encode()
		var filters []pubsub.DeadLetterFilter
		if filters, err = h.shown(r, f); err != nil {
			break
		}
		errGroup := r.PostFormValue("error-group")
		filters = append(filters, pubsub.ByReasonGroup(errGroup))
		var n int
		n, err = h.resolveN(r, topic, group, op, pubsub.ReplayMatching(filters...).Note(v.identity, note))
		msg = fmt.Sprintf("%s %d of the %s letter(s) shown in the error group %q%s; letters dead-lettered after the page was loaded were left alone.",
			pastTense(op), n, r.PostFormValue("shown"), errGroup, filterNote(f))
	case "replay-edited":
		id := r.PostFormValue("id")
		payload := []byte(strings.ReplaceAll(r.PostFormValue("payload"), "\r\n", "\n"))
		sel := pubsub.ReplayIDs(id).WithPayload(payload).Note(v.identity, note)
		var n int
		n, err = h.c.Replay(ctx, topic, group, sel)
		if err != nil && isInvalid(err) {
			h.showLetter(w, r, topic, group, id, payload, err.Error())
			return
		}
		msg = fmt.Sprintf("Replayed %d letter with the edited payload.", n)
	default:
		http.Error(w, fmt.Sprintf("console: unknown action %q", op), http.StatusBadRequest)
		return
	}
	if err != nil {
		msg = "Failed: " + err.Error()
	}
	h.sessions.setFlash(v.session, msg)
	seeOther(w, back)
}

func (h *console) resolve(r *http.Request, topic, group, op string, sel pubsub.ReplaySelector) (string, error) {
	n, err := h.resolveN(r, topic, group, op, sel)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %d letter(s).", pastTense(op), n), nil
}

// resolveN replays (op "replay") or discards the selected letters and returns how many.
func (h *console) resolveN(r *http.Request, topic, group, op string, sel pubsub.ReplaySelector) (int, error) {
	var n int
	var err error
	if op == "replay" {
		n, err = h.c.Replay(r.Context(), topic, group, sel)
	} else {
		n, err = h.c.Discard(r.Context(), topic, group, sel)
	}
	if err != nil {
		return n, fmt.Errorf("%s stopped after %d letter(s): %w", op, n, err)
	}
	return n, nil
}

// pastTense is "Replayed" or "Discarded".
func pastTense(op string) string {
	return strings.ToUpper(op[:1]) + strings.TrimSuffix(op[1:], "e") + "ed"
}

// shown returns the filters that keep exactly the letters a page showed: the page's
// filter as the form carries it, and its snapshot (pubsub.AsOf).
func (h *console) shown(r *http.Request, f filterForm) ([]pubsub.DeadLetterFilter, error) {
	filters, err := f.filters()
	if err != nil {
		return nil, err
	}
	snapshot := r.PostFormValue("snapshot")
	if snapshot == "" {
		return nil, errors.New("the form does not say which letters the page showed: reload the page and try again")
	}
	asOf, err := pubsub.AsOf(snapshot)
	if err != nil {
		return nil, err
	}
	return append(filters, asOf), nil
}

// filterNote is ", with the filter …" for a confirmation, or "" without a filter.
func filterNote(f filterForm) string {
	if s := f.String(); s != "" {
		return " with the filter " + s
	}
	return ""
}

func isInvalid(err error) bool { return errors.Is(err, pubsub.ErrInvalidOption) }
func isUnknown(err error) bool { return errors.Is(err, pubsub.ErrUnknownSubscription) }
