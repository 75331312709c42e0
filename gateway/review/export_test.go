package review

import "testing"

// SetSessionEventsPage lets external tests page SessionEvents in small steps.
func SetSessionEventsPage(t *testing.T, n int) {
	old := sessionEventsPage
	sessionEventsPage = n
	t.Cleanup(func() { sessionEventsPage = old })
}
