package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/pamtrail/pamtrail/gateway/chain"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Doc is one event document as stored in Elasticsearch.
type Doc struct {
	ID     string          // _id
	Source json.RawMessage // _source, exactly as indexed
}

// source is the part of an event document (exporter mapping mode otel) the
// chain covers.
type source struct {
	Timestamp  string                     `json:"@timestamp"`
	Observed   string                     `json:"observed_timestamp"`
	Severity   string                     `json:"severity_text"`
	EventName  string                     `json:"event_name"`
	Body       struct{ Text *string }     `json:"body"`
	Attributes map[string]json.RawMessage `json:"attributes"`
}

// event is a parsed document.
type event struct {
	docID    string
	seq      int64 // -1: no valid pam.seq
	name     string
	src      source
	link     chain.Hash // stored pam.chain
	hasLink  bool
	consumed bool
	// constants is the digest of the document's own session constants
	// (chain version 2), or why they cannot be canonical.
	constants    chain.Hash
	constantsErr error
}

func parseDoc(d Doc) (*event, error) {
	dec := json.NewDecoder(bytes.NewReader(d.Source))
	dec.UseNumber()
	e := &event{docID: d.ID, seq: -1}
	if err := dec.Decode(&e.src); err != nil {
		return nil, fmt.Errorf("document %s: %v", d.ID, err)
	}
	e.name = e.src.EventName
	if n, ok := e.number(schema.AttrSeq); ok {
		if v, err := n.Int64(); err == nil && v >= 0 {
			e.seq = v
		}
	}
	if s, ok := e.str(schema.AttrChain); ok {
		if h, err := chain.ParseHash(s); err == nil {
			e.link, e.hasLink = h, true
		}
	}
	var constants chain.Canon
	for k, raw := range e.src.Attributes {
		if schema.SessionConstant(k) && e.constantsErr == nil {
			e.constantsErr = canonValue(&constants, k, raw)
		}
	}
	e.constants = constants.SessionDigest()
	return e, nil
}

func (e *event) str(key string) (string, bool) {
	raw, ok := e.src.Attributes[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func (e *event) number(key string) (json.Number, bool) {
	raw, ok := e.src.Attributes[key]
	if !ok {
		return "", false
	}
	n := json.Number(bytes.TrimSpace(raw))
	if _, err := strconv.ParseFloat(string(n), 64); err != nil {
		return "", false
	}
	return n, true
}

func (e *event) int(key string) (int64, bool) {
	n, ok := e.number(key)
	if !ok {
		return 0, false
	}
	v, err := n.Int64()
	return v, err == nil
}

func (e *event) bool(key string) bool {
	var b bool
	return json.Unmarshal(e.src.Attributes[key], &b) == nil && b
}

// linkAt recomputes the event's link after prev in chain version v, as if
// its pam.seq were seq (its own seq, or another position when looking for
// a moved record). In version 2 the session constants are covered by their
// digest, computed from the event's own values: an event whose user, account
// or other session attribute was changed no longer links, as one whose
// statement was.
func (e *event) linkAt(c *chain.Canon, v chain.Version, prev chain.Hash, seq int64) (chain.Hash, error) {
	c.Reset(v)
	body := ""
	if e.src.Body.Text != nil {
		body = *e.src.Body.Text
	}
	c.Header(e.src.EventName, body, e.src.Severity, epochMillis(e.src.Timestamp), epochMillis(e.src.Observed))
	for k, raw := range e.src.Attributes {
		if schema.ChainExcluded(k) || (v != chain.V1 && schema.SessionConstant(k)) {
			continue
		}
		if k == schema.AttrSeq {
			c.Int(k, seq)
			continue
		}
		if err := canonValue(c, k, raw); err != nil {
			return chain.Hash{}, err
		}
	}
	if v == chain.V1 {
		return c.LinkV1(prev), nil
	}
	if e.constantsErr != nil {
		return chain.Hash{}, e.constantsErr
	}
	return c.Link(prev, e.constants), nil
}

// canonValue adds one JSON attribute value. The exporter writes doubles
// always with a radix point or an exponent, integers without, so the JSON
// text tells the two apart.
func canonValue(c *chain.Canon, key string, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return fmt.Errorf("attribute %s: empty value", key)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("attribute %s: %v", key, err)
		}
		c.String(key, s)
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("attribute %s: %v", key, err)
		}
		c.Bool(key, b)
	case 'n':
		c.Null(key)
	case '[':
		var ss []string
		if err := json.Unmarshal(raw, &ss); err != nil {
			return fmt.Errorf("attribute %s: only string arrays are recorded", key)
		}
		c.Strings(key, ss)
	default:
		text := string(raw)
		if strings.ContainsAny(text, ".eE") {
			f, err := strconv.ParseFloat(text, 64)
			if err != nil {
				return fmt.Errorf("attribute %s: %v", key, err)
			}
			c.Double(key, f)
			return nil
		}
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return fmt.Errorf("attribute %s: %v", key, err)
		}
		c.Int(key, v)
	}
	return nil
}

// epochMillis reads the exporter's timestamp form "<ms>.<ns remainder>":
// only the milliseconds are exact (the remainder is not zero-padded).
func epochMillis(ts string) int64 {
	ms, _, _ := strings.Cut(ts, ".")
	v, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return -1
	}
	return v
}
