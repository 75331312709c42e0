package review

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

func TestConnectionOf(t *testing.T) {
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	ev := func(name string, s int) Event {
		return Event{EventName: name, Timestamp: at(s), Attributes: map[string]any{schema.AttrGatewayID: "gw-events"}}
	}
	tests := []struct {
		name   string
		sess   Session
		events []Event
		want   Connection
	}{
		{"live: behind by now minus the newest record, heartbeats included",
			Session{Status: schema.StatusActive, GatewayID: "gw-1", LastSeen: Time{at(20)}, LastActivity: Time{at(5)}},
			[]Event{ev(schema.EventSSHCommand, 8)},
			Connection{State: StateLive, Gateway: "gw-1", LastActivity: at(8), RecordedUntil: at(20), Behind: 10 * time.Second, BehindSeconds: 10}},
		{"live: events newer than the document",
			Session{Status: schema.StatusActive},
			[]Event{ev(schema.EventDBQuery, 25), ev(schema.EventHeartbeat, 28)},
			Connection{State: StateLive, Gateway: "gw-events", LastActivity: at(25), RecordedUntil: at(28), Behind: 2 * time.Second, BehindSeconds: 2}},
		{"ended: no lag, bytes and reason from the document",
			Session{Status: schema.StatusEnded, EndReason: schema.EndClientQuit, BytesIn: 10, BytesOut: 20, LastSeen: Time{at(9)}, LastActivity: Time{at(7)}},
			[]Event{ev(schema.EventSessionEnd, 9)},
			Connection{State: schema.StatusEnded, EndReason: schema.EndClientQuit, BytesIn: 10, BytesOut: 20, Gateway: "gw-events", LastActivity: at(7), RecordedUntil: at(9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ConnectionOf(tt.sess, tt.events, at(30)); got != tt.want {
				t.Errorf("ConnectionOf = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestWriteSessionDetailLive(t *testing.T) {
	var b bytes.Buffer
	c := Connection{State: StateLive, RecordedUntil: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Behind: 12340 * time.Millisecond}
	if err := WriteSessionDetail(&b, Session{ID: "s1", Status: schema.StatusActive}, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Connection  live (view 12.3 s behind: recorded until 2026-12-03 10:00:00.000Z)", "Traffic     counted when the session ends"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("detail lacks %q:\n%s", want, b.String())
		}
	}
}
