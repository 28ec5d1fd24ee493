package metadata

import "testing"

// TestIsMediaType: IsMediaType agrees with MediaType on parameters, case and spaces.
func TestIsMediaType(t *testing.T) {
	for _, ct := range []string{
		"application/cloudevents+json", "Application/CloudEvents+JSON", " application/cloudevents+json ; charset=utf-8",
		"application/cloudevents+json;charset=utf-8", "application/cloudevents+jsonx", "application/cloudevents",
		"application/json", "", ";", "application/cloudevents+json x",
	} {
		want := MediaType(ct) == StructuredCloudEvent
		if got := IsMediaType(ct, StructuredCloudEvent); got != want {
			t.Errorf("IsMediaType(%q) = %v, MediaType says %v", ct, got, want)
		}
	}
}
