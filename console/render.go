package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// files are the console's templates and static files, built into the binary.
//
//go:embed templates static
var files embed.FS

// parsePages parses each page template with the layout around it.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{"time": showTime, "short": short}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: parsing %s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// page is what every page's template gets.
type page struct {
	Title    string
	Role     string
	CanEdit  bool
	LoggedIn bool
	CSRF     string
	Flash    string
	URL      string // the client's transport URL, redacted
	Data     any
}

// render writes the page name with data, or a plain error if the template fails (the
// page is written to a buffer first, so a half page is never sent).
func (h *console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	p := page{Title: name, Data: data}
	if v := visitorOf(r); v.session != nil {
		p.Role, p.CanEdit, p.CSRF, p.LoggedIn = v.role.String(), v.canChange(), v.session.csrf, true
		p.Flash = h.sessions.takeFlash(v.session)
		p.URL = h.c.URL()
	}
	var buf bytes.Buffer
	if err := h.pages[name].Execute(&buf, p); err != nil {
		http.Error(w, "console: rendering "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// short cuts s to its first line and n runes.
func short(n int, s string) string {
	s, _, cut := strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	} else if cut {
		return s + " …"
	}
	return s
}

// prettyPayload indents a JSON payload; anything else is shown as text.
func prettyPayload(b []byte) (string, bool) {
	var out bytes.Buffer
	if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
		return out.String(), true
	}
	return string(b), false
}
