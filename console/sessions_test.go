package console

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestViewersCannotEvictAdmins: viewer logins beyond the viewers' cap end the oldest
// viewer sessions only; an admin logged in before them stays logged in.
func TestViewersCannotEvictAdmins(t *testing.T) {
	s := newSessions(time.Hour)
	admin := s.create(Admin, "token")
	first := s.create(Viewer, "token")
	for range maxSessions[Viewer] + 10 {
		s.create(Viewer, "token")
	}
	if s.lookup(admin.id) == nil {
		t.Fatal("viewer logins ended an admin's session")
	}
	if s.lookup(first.id) != nil {
		t.Fatal("the oldest viewer session outlived the viewers' cap")
	}
	if n := s.count[Viewer]; n != maxSessions[Viewer] {
		t.Fatalf("%d viewer sessions, want the cap %d", n, maxSessions[Viewer])
	}
	if n := s.count[Admin]; n != 1 {
		t.Fatalf("%d admin sessions, want 1", n)
	}
}

// lookup is get by session id.
func (s *sessions) lookup(id string) *session {
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
	return s.get(r)
}
