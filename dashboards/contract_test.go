// Package dashboards_test is the contract between the Kibana saved objects,
// the `pamtrail sessions` queries and the Elasticsearch templates: every
// field the dashboards or the CLI use must be mapped by a template we
// install, and the saved objects must reference each other consistently.
package dashboards_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	templates "github.com/pamtrail/pamtrail/dashboards/elasticsearch"
	"github.com/pamtrail/pamtrail/gateway/review"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

const savedObjectsFile = "kibana/pamtrail.ndjson"

// mapping is the set of field paths one index template maps, for the index
// patterns it applies to.
type mapping struct {
	name     string
	patterns []string
	fields   map[string]bool
}

// loadMappings flattens every index template's mappings (and those of the
// component templates it is composed of) into dotted field paths. With
// `subobjects: false` a property name already contains dots, so joining
// names with "." yields the queried path either way; multi-fields
// (text + .keyword) become path.sub.
func loadMappings(t *testing.T) []mapping {
	t.Helper()
	tmpls, err := templates.Templates()
	if err != nil {
		t.Fatal(err)
	}
	type body struct {
		IndexPatterns []string `json:"index_patterns"`
		ComposedOf    []string `json:"composed_of"`
		Template      struct {
			Mappings struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	components := map[string]body{}
	var out []mapping
	for _, tm := range tmpls {
		var b body
		if err := json.Unmarshal(tm.Body, &b); err != nil {
			t.Fatalf("%s: %v", tm.File, err)
		}
		if tm.Kind == templates.ComponentTemplate {
			components[tm.Name] = b
			continue
		}
		m := mapping{name: tm.Name, patterns: b.IndexPatterns, fields: map[string]bool{}}
		for _, c := range b.ComposedOf {
			addProperties(t, "", components[c].Template.Mappings.Properties, m.fields)
		}
		addProperties(t, "", b.Template.Mappings.Properties, m.fields)
		out = append(out, m)
	}
	return out
}

func addProperties(t *testing.T, prefix string, props map[string]json.RawMessage, out map[string]bool) {
	for name, raw := range props {
		var p struct {
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
			Fields     map[string]json.RawMessage `json:"fields"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("mapping of %s%s: %v", prefix, name, err)
		}
		full := prefix + name
		if p.Type != "" {
			out[full] = true
		}
		for sub := range p.Fields {
			out[full+"."+sub] = true
		}
		addProperties(t, full+".", p.Properties, out)
	}
}

// fieldsFor returns the fields mapped for indices matching a data view
// title such as "pamtrail-events*", or nil when no template covers it.
func fieldsFor(mappings []mapping, title string) map[string]bool {
	for _, m := range mappings {
		for _, p := range m.patterns {
			if ok, _ := path.Match(p, strings.TrimSuffix(title, "*")+"x"); ok || p == title {
				return m.fields
			}
		}
	}
	return nil
}

type reference struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type savedObject struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Attributes json.RawMessage `json:"attributes"`
	References []reference     `json:"references"`
}

// attrs holds the attributes of every type we ship; a type leaves the
// others' fields empty.
type attrs struct {
	Title         string     `json:"title"`
	TimeFieldName string     `json:"timeFieldName"`
	Columns       []string   `json:"columns"`
	Sort          [][]string `json:"sort"`
	VisState      string     `json:"visState"`
	PanelsJSON    string     `json:"panelsJSON"`
	Meta          struct {
		SearchSourceJSON string `json:"searchSourceJSON"`
	} `json:"kibanaSavedObjectMeta"`
	TimeRestore     bool `json:"timeRestore"`
	RefreshInterval *struct {
		Pause bool `json:"pause"`
		Value int  `json:"value"`
	} `json:"refreshInterval"`
}

type searchSource struct {
	Query struct {
		Query    string `json:"query"`
		Language string `json:"language"`
	} `json:"query"`
	Filter       []json.RawMessage `json:"filter"`
	IndexRefName string            `json:"indexRefName"`
}

type panel struct {
	Type         string `json:"type"`
	PanelIndex   string `json:"panelIndex"`
	PanelRefName string `json:"panelRefName"`
}

// kqlField finds the field names of KQL clauses (field : value,
// field >= value) once quoted values are removed.
var (
	kqlQuoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	kqlField  = regexp.MustCompile(`([A-Za-z_@][A-Za-z0-9_.@-]*)\s*(?::|<=|>=|<|>)`)
)

func kqlFields(q string) []string {
	var out []string
	for _, m := range kqlField.FindAllStringSubmatch(kqlQuoted.ReplaceAllString(q, `""`), -1) {
		out = append(out, m[1])
	}
	return out
}

// checkSavedObjects returns every contract violation in an NDJSON export.
func checkSavedObjects(ndjson []byte, mappings []mapping) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var objs []savedObject
	byKey := map[string]savedObject{}
	sc := bufio.NewScanner(bytes.NewReader(ndjson))
	sc.Buffer(nil, 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var o savedObject
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			bad("line %d: invalid JSON: %v", line, err)
			continue
		}
		key := o.Type + "/" + o.ID
		if o.ID == "" || o.Type == "" {
			bad("line %d: object without id or type", line)
		}
		if _, dup := byKey[key]; dup {
			bad("%s: id used twice", key)
		}
		byKey[key] = o
		objs = append(objs, o)
	}

	for _, o := range objs {
		key := o.Type + "/" + o.ID
		var a attrs
		if err := json.Unmarshal(o.Attributes, &a); err != nil {
			bad("%s: attributes: %v", key, err)
			continue
		}
		if a.Title == "" {
			bad("%s: no title", key)
		}
		refs := map[string]reference{}
		for _, r := range o.References {
			if _, ok := byKey[r.Type+"/"+r.ID]; !ok {
				bad("%s: reference %q points at %s/%s, which is not in the file", key, r.Name, r.Type, r.ID)
			}
			if _, dup := refs[r.Name]; dup {
				bad("%s: reference name %q used twice", key, r.Name)
			}
			refs[r.Name] = r
		}
		// fields is what this object may name: the data view it searches.
		var fields map[string]bool
		dataViewFields := func(r reference) map[string]bool {
			var dv attrs
			_ = json.Unmarshal(byKey[r.Type+"/"+r.ID].Attributes, &dv)
			f := fieldsFor(mappings, dv.Title)
			if f == nil {
				bad("%s: data view %q: no index template in dashboards/elasticsearch covers it", key, dv.Title)
			}
			return f
		}
		checkField := func(where, field string) {
			if fields != nil && !fields[field] {
				bad("%s: %s: field %q is not mapped by the index template", key, where, field)
			}
		}
		var src searchSource
		if a.Meta.SearchSourceJSON != "" {
			if err := json.Unmarshal([]byte(a.Meta.SearchSourceJSON), &src); err != nil {
				bad("%s: searchSourceJSON: %v", key, err)
			}
		}
		if src.IndexRefName != "" {
			r, ok := refs[src.IndexRefName]
			if !ok || r.Type != "index-pattern" {
				bad("%s: indexRefName %q has no index-pattern reference", key, src.IndexRefName)
			} else {
				fields = dataViewFields(r)
			}
		}

		switch o.Type {
		case "index-pattern":
			fields = fieldsFor(mappings, a.Title)
			if fields == nil {
				bad("%s: data view %q: no index template in dashboards/elasticsearch covers it", key, a.Title)
			}
			checkField("timeFieldName", a.TimeFieldName)
		case "search":
			for _, c := range a.Columns {
				checkField("column", c)
			}
			for _, s := range a.Sort {
				if len(s) > 0 {
					checkField("sort", s[0])
				}
			}
		case "visualization":
			var vis struct {
				Aggs []struct {
					Params struct {
						Field string `json:"field"`
					} `json:"params"`
				} `json:"aggs"`
			}
			if err := json.Unmarshal([]byte(a.VisState), &vis); err != nil {
				bad("%s: visState: %v", key, err)
			}
			for _, agg := range vis.Aggs {
				if agg.Params.Field != "" {
					checkField("aggregation", agg.Params.Field)
				}
			}
		case "dashboard":
			// A dashboard's query runs against the data views of all its
			// panels; a field must exist in at least one of them.
			fields = checkPanels(key, a.PanelsJSON, refs, byKey, dataViewFields, bad)
		}
		if src.Query.Language == "kuery" {
			for _, f := range kqlFields(src.Query.Query) {
				checkField("query", f)
			}
		}
	}
	return problems
}

// checkPanels verifies panelsJSON against references and returns the union
// of the fields of the panels' data views.
func checkPanels(key, panelsJSON string, refs map[string]reference, byKey map[string]savedObject,
	dataViewFields func(reference) map[string]bool, bad func(string, ...any)) map[string]bool {
	var panels []panel
	if err := json.Unmarshal([]byte(panelsJSON), &panels); err != nil {
		bad("%s: panelsJSON: %v", key, err)
		return nil
	}
	union := map[string]bool{}
	used := map[string]bool{}
	for _, p := range panels {
		name := p.PanelIndex + ":" + p.PanelRefName
		r, ok := refs[name]
		switch {
		case p.PanelRefName == "":
			bad("%s: panel %q has no panelRefName", key, p.PanelIndex)
			continue
		case used[name]:
			bad("%s: panel %q appears twice", key, p.PanelIndex)
		case !ok:
			bad("%s: panel %q: no reference named %q", key, p.PanelIndex, name)
			continue
		case r.Type != p.Type:
			bad("%s: panel %q is a %s but its reference is a %s", key, p.PanelIndex, p.Type, r.Type)
		}
		used[name] = true
		var a attrs
		_ = json.Unmarshal(byKey[r.Type+"/"+r.ID].Attributes, &a)
		var src searchSource
		_ = json.Unmarshal([]byte(a.Meta.SearchSourceJSON), &src)
		for _, pr := range byKey[r.Type+"/"+r.ID].References {
			if pr.Name == src.IndexRefName && pr.Type == "index-pattern" {
				for f := range dataViewFields(pr) {
					union[f] = true
				}
			}
		}
	}
	for name := range refs {
		if strings.Contains(name, ":panel_") && !used[name] {
			bad("%s: reference %q belongs to no panel", key, name)
		}
	}
	return union
}

func readSavedObjects(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(savedObjectsFile)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestKibanaObjectsMatchTemplates(t *testing.T) {
	for _, p := range checkSavedObjects(readSavedObjects(t), loadMappings(t)) {
		t.Error(p)
	}
}

// TestCLIFieldsAreMapped: the fields `pamtrail sessions` filters, sorts and
// searches on are mapped by the templates too.
func TestCLIFieldsAreMapped(t *testing.T) {
	mappings := loadMappings(t)
	check := func(pattern string, fields []string) {
		mapped := fieldsFor(mappings, pattern)
		if mapped == nil {
			t.Errorf("no index template in dashboards/elasticsearch covers %s, which `pamtrail sessions` reads", pattern)
			return
		}
		for _, f := range fields {
			if !mapped[f] {
				t.Errorf("%s: field %q used by `pamtrail sessions` is not mapped", pattern, f)
			}
		}
	}
	check(schema.EventsIndexPattern, append(slices.Clone(review.TextFields), review.EventQueryFields...))
	check(schema.SessionsIndexPattern, review.SessionQueryFields)
}

// TestLiveRefreshDetailDashboard: the promise that the detail page
// refreshes on its own while a session is active.
func TestLiveRefreshDetailDashboard(t *testing.T) {
	sc := bufio.NewScanner(bytes.NewReader(readSavedObjects(t)))
	for sc.Scan() {
		var o savedObject
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil || o.ID != "pamtrail-session-detail" {
			continue
		}
		var a attrs
		if err := json.Unmarshal(o.Attributes, &a); err != nil {
			t.Fatal(err)
		}
		if !a.TimeRestore || a.RefreshInterval == nil || a.RefreshInterval.Pause || a.RefreshInterval.Value != 5000 {
			t.Errorf("session detail dashboard: timeRestore %v, refreshInterval %+v; want auto-refresh every 5000 ms", a.TimeRestore, a.RefreshInterval)
		}
		return
	}
	t.Fatal("dashboard pamtrail-session-detail not found")
}

// TestContractCatchesBrokenObjects feeds objects with one defect each; the
// checker must name it.
func TestContractCatchesBrokenObjects(t *testing.T) {
	mappings := []mapping{{name: "events", patterns: []string{"pamtrail-events*"},
		fields: map[string]bool{"@timestamp": true, "event_name": true, "attributes.session.id": true}}}
	dataView := `{"id":"dv","type":"index-pattern","attributes":{"title":"pamtrail-events*","timeFieldName":"@timestamp"},"references":[]}`
	search := func(columns, query string) string {
		return `{"id":"s","type":"search","attributes":{"title":"S","columns":` + columns + `,"sort":[["@timestamp","desc"]],` +
			`"kibanaSavedObjectMeta":{"searchSourceJSON":"{\"query\":{\"query\":\"` + query + `\",\"language\":\"kuery\"},\"indexRefName\":\"kibanaSavedObjectMeta.searchSourceJSON.index\"}"}},` +
			`"references":[{"id":"dv","name":"kibanaSavedObjectMeta.searchSourceJSON.index","type":"index-pattern"}]}`
	}
	good := search(`["event_name"]`, `attributes.session.id : \\\"x\\\"`)
	dashboard := func(panelRef, refName string) string {
		return `{"id":"d","type":"dashboard","attributes":{"title":"D","panelsJSON":"[{\"type\":\"search\",\"panelIndex\":\"1\",\"panelRefName\":\"` + panelRef + `\"}]",` +
			`"kibanaSavedObjectMeta":{"searchSourceJSON":"{\"query\":{\"query\":\"\",\"language\":\"kuery\"}}"}},` +
			`"references":[{"id":"s","name":"` + refName + `","type":"search"}]}`
	}
	tests := []struct {
		name    string
		objects []string
		want    string // "" means valid
	}{
		{"valid", []string{dataView, good, dashboard("panel_1", "1:panel_1")}, ""},
		{"invalid JSON", []string{dataView, `{"id":`}, "invalid JSON"},
		{"duplicate id", []string{dataView, dataView}, "id used twice"},
		{"unmapped column", []string{dataView, search(`["attributes.nope"]`, "")}, `column: field "attributes.nope" is not mapped`},
		{"unmapped KQL field", []string{dataView, search(`["event_name"]`, `attributes.user : \\\"a:b\\\"`)}, `query: field "attributes.user" is not mapped`},
		{"dangling reference", []string{good}, "which is not in the file"},
		{"panelRefName without reference", []string{dataView, good, dashboard("panel_1", "1:panel_2")}, `no reference named "1:panel_1"`},
		{"uncovered data view", []string{strings.Replace(dataView, "pamtrail-events*", "other*", 1)}, `data view "other*": no index template`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := checkSavedObjects([]byte(strings.Join(tt.objects, "\n")), mappings)
			if tt.want == "" {
				if len(problems) > 0 {
					t.Errorf("valid objects reported: %v", problems)
				}
				return
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %v lack %q", problems, tt.want)
			}
		})
	}
}

func TestKQLFields(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{`attributes.pam.risk.severity : *`, []string{"attributes.pam.risk.severity"}},
		{`session_id : "a:b" or attributes.session.id : "x"`, []string{"session_id", "attributes.session.id"}},
		{`not event_name : "pam.session.heartbeat" and duration_ms >= 10`, []string{"event_name", "duration_ms"}},
		{``, nil},
	}
	for _, tt := range tests {
		if got := kqlFields(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("kqlFields(%q) = %v, want %v", tt.q, got, tt.want)
		}
	}
}
