package dashboards_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The drilldown contract: a session id in the Sessions dashboard is a link
// (a URL field formatter on the data view, which Kibana 8 and 9 render in
// saved-search panels and Discover alike) that opens the Session detail
// dashboard filtered on that session; the Sessions dashboard's controls
// filter on mapped fields; the detail dashboard shows the connection, the
// findings and summary, and the commands and queries in order.

// savedObjects indexes the NDJSON by type/id.
func savedObjects(t *testing.T, ndjson []byte) map[string]savedObject {
	t.Helper()
	out := map[string]savedObject{}
	sc := bufio.NewScanner(bytes.NewReader(ndjson))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var o savedObject
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatal(err)
		}
		out[o.Type+"/"+o.ID] = o
	}
	return out
}

type fieldFormat struct {
	ID     string `json:"id"`
	Params struct {
		URLTemplate   string `json:"urlTemplate"`
		LabelTemplate string `json:"labelTemplate"`
	} `json:"params"`
}

type dataViewFormats struct {
	Title          string `json:"title"`
	FieldFormatMap string `json:"fieldFormatMap"`
	FieldAttrs     string `json:"fieldAttrs"`
}

type controlGroup struct {
	ControlGroupInput *struct {
		PanelsJSON string `json:"panelsJSON"`
	} `json:"controlGroupInput"`
}

type control struct {
	Type          string `json:"type"`
	ExplicitInput struct {
		ID        string `json:"id"`
		FieldName string `json:"fieldName"`
	} `json:"explicitInput"`
}

// dashboardLink is what a URL field format's template opens.
var dashboardLink = regexp.MustCompile(`^\.\./app/dashboards#/view/([A-Za-z0-9_-]+)\?(.*)$`)

// kueryOfLink returns the KQL query a dashboard link sets through _a, with
// value substituted as Kibana does ({{value}} is URL-encoded).
func kueryOfLink(template, value string) (dashboardID, kuery string, err error) {
	m := dashboardLink.FindStringSubmatch(template)
	if m == nil {
		return "", "", fmt.Errorf("link %q: not ../app/dashboards#/view/<id>?... (the form Kibana resolves under any base path and space)", template)
	}
	link := strings.NewReplacer("{{value}}", url.QueryEscape(value), "{{rawValue}}", value).Replace(m[2])
	for _, part := range strings.Split(link, "&") {
		k, v, _ := strings.Cut(part, "=")
		if k != "_a" {
			continue
		}
		decoded, err := url.PathUnescape(v)
		if err != nil {
			return m[1], "", fmt.Errorf("link %q: _a: %v", template, err)
		}
		q := regexp.MustCompile(`query:\(language:kuery,query:'((?:[^'!]|!.)*)'\)`).FindStringSubmatch(decoded)
		if q == nil {
			return m[1], "", fmt.Errorf("link %q: _a sets no KQL query: %s", template, decoded)
		}
		return m[1], q[1], nil
	}
	return m[1], "", fmt.Errorf("link %q: no _a state: the dashboard would open unfiltered", template)
}

// checkLinks returns the problems of every URL field format in the file:
// the link must open a dashboard of the file, set a KQL query naming the
// session, and every field of that query must be mapped in a data view of
// one of the target dashboard's panels.
func checkLinks(t *testing.T, objs map[string]savedObject, mappings []mapping) (problems []string, links map[string]string) {
	links = map[string]string{} // data view title + field -> dashboard id
	for key, o := range objs {
		if o.Type != "index-pattern" {
			continue
		}
		var dv dataViewFormats
		_ = json.Unmarshal(o.Attributes, &dv)
		if dv.FieldFormatMap == "" {
			continue
		}
		var formats map[string]fieldFormat
		if err := json.Unmarshal([]byte(dv.FieldFormatMap), &formats); err != nil {
			problems = append(problems, fmt.Sprintf("%s: fieldFormatMap: %v", key, err))
			continue
		}
		mapped := fieldsFor(mappings, dv.Title)
		for field, f := range formats {
			if !mapped[field] {
				problems = append(problems, fmt.Sprintf("%s: field format for %q, which the template does not map", key, field))
			}
			if f.ID != "url" {
				continue
			}
			target, kuery, err := kueryOfLink(f.Params.URLTemplate, "s-0123abcd")
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s: %v", key, field, err))
				continue
			}
			dash, ok := objs["dashboard/"+target]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: %s links to dashboard %q, which is not in the file", key, field, target))
				continue
			}
			if !strings.Contains(kuery, `"s-0123abcd"`) {
				problems = append(problems, fmt.Sprintf("%s: %s: the link's query %q does not name the session", key, field, kuery))
			}
			var a attrs
			_ = json.Unmarshal(dash.Attributes, &a)
			refs := map[string]reference{}
			for _, r := range dash.References {
				refs[r.Name] = r
			}
			targetFields := checkPanels("dashboard/"+target, a.PanelsJSON, refs, objs, func(r reference) map[string]bool {
				var tv attrs
				_ = json.Unmarshal(objs[r.Type+"/"+r.ID].Attributes, &tv)
				return fieldsFor(mappings, tv.Title)
			}, func(string, ...any) {})
			for _, qf := range kqlFields(kuery) {
				if !targetFields[qf] {
					problems = append(problems, fmt.Sprintf("%s: %s: the link's query field %q exists in no data view of %s's panels", key, field, qf, target))
				}
			}
			links[dv.Title+" "+field] = target
		}
	}
	return problems, links
}

// checkControls returns the problems of every dashboard's controls: each
// names a field mapped in the data view its reference points at.
func checkControls(objs map[string]savedObject, mappings []mapping) (problems []string, fields map[string][]string) {
	fields = map[string][]string{} // dashboard id -> control fields
	for key, o := range objs {
		if o.Type != "dashboard" {
			continue
		}
		var cg controlGroup
		_ = json.Unmarshal(o.Attributes, &cg)
		if cg.ControlGroupInput == nil {
			continue
		}
		var controls map[string]control
		if err := json.Unmarshal([]byte(cg.ControlGroupInput.PanelsJSON), &controls); err != nil {
			problems = append(problems, fmt.Sprintf("%s: controlGroupInput.panelsJSON: %v", key, err))
			continue
		}
		for id, c := range controls {
			refName := "controlGroup_" + id + ":optionsListDataView"
			i := slices.IndexFunc(o.References, func(r reference) bool { return r.Name == refName })
			if c.Type != "optionsListControl" || c.ExplicitInput.ID != id || i < 0 {
				problems = append(problems, fmt.Sprintf("%s: control %q: want an optionsListControl with its id and a reference %q", key, id, refName))
				continue
			}
			r := o.References[i]
			dv, ok := objs[r.Type+"/"+r.ID]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: control %q: data view %s is not in the file", key, id, r.ID))
				continue
			}
			var a attrs
			_ = json.Unmarshal(dv.Attributes, &a)
			if !fieldsFor(mappings, a.Title)[c.ExplicitInput.FieldName] {
				problems = append(problems, fmt.Sprintf("%s: control %q filters on %q, which %s does not map", key, id, c.ExplicitInput.FieldName, a.Title))
			}
			fields[o.ID] = append(fields[o.ID], c.ExplicitInput.FieldName)
		}
	}
	return problems, fields
}

func TestSessionDrilldown(t *testing.T) {
	objs := savedObjects(t, readSavedObjects(t))
	mappings := loadMappings(t)
	problems, links := checkLinks(t, objs, mappings)
	for _, p := range problems {
		t.Error(p)
	}
	for _, want := range []string{"pamtrail-sessions* session_id", "pamtrail-events* attributes.session.id"} {
		if links[want] != "pamtrail-session-detail" {
			t.Errorf("%s: no link to pamtrail-session-detail (links: %v)", want, links)
		}
	}
	// The Sessions dashboard's list shows the linked field.
	var list attrs
	_ = json.Unmarshal(objs["search/pamtrail-sessions-list"].Attributes, &list)
	if !slices.Contains(list.Columns, "session_id") {
		t.Errorf("the sessions list does not show session_id, the link into a session")
	}
}

func TestSessionsDashboardControls(t *testing.T) {
	objs := savedObjects(t, readSavedObjects(t))
	problems, fields := checkControls(objs, loadMappings(t))
	for _, p := range problems {
		t.Error(p)
	}
	got := fields["pamtrail-sessions-dashboard"]
	slices.Sort(got)
	if want := []string{"account", "resource_type", "risk_level", "status", "user"}; !slices.Equal(got, want) {
		t.Errorf("Sessions dashboard controls filter on %v, want %v", got, want)
	}
}

// TestSessionDetailContents: the detail dashboard lists commands and
// queries in seq order, shows findings and summary, and the connection.
func TestSessionDetailContents(t *testing.T) {
	objs := savedObjects(t, readSavedObjects(t))
	var detail attrs
	_ = json.Unmarshal(objs["dashboard/pamtrail-session-detail"].Attributes, &detail)
	var columns []string
	var seqSorted, actions bool
	for _, r := range objs["dashboard/pamtrail-session-detail"].References {
		var a attrs
		_ = json.Unmarshal(objs[r.Type+"/"+r.ID].Attributes, &a)
		columns = append(columns, a.Columns...)
		var src searchSource
		_ = json.Unmarshal([]byte(a.Meta.SearchSourceJSON), &src)
		if strings.Contains(src.Query.Query, `"pam.db.query"`) && strings.Contains(src.Query.Query, `"pam.ssh.command"`) {
			actions = true
			seqSorted = len(a.Sort) > 0 && slices.Equal(a.Sort[0], []string{"attributes.pam.seq", "asc"})
		}
	}
	if !actions || !seqSorted {
		t.Errorf("no detail panel lists queries and commands sorted by attributes.pam.seq (found: %v, sorted: %v)", actions, seqSorted)
	}
	for _, want := range []string{"status", "last_activity", "last_seen", "bytes_in", "bytes_out", "gateway_id",
		"risk_findings.reason", "summary.text", "attributes.db.query.text", "attributes.pam.ssh.command"} {
		if !slices.Contains(columns, want) {
			t.Errorf("the detail dashboard shows no %s", want)
		}
	}
}

// TestDrilldownContractCatchesBrokenLinks feeds links with one defect each.
func TestDrilldownContractCatchesBrokenLinks(t *testing.T) {
	mappings := []mapping{{name: "sessions", patterns: []string{"pamtrail-sessions*"},
		fields: map[string]bool{"session_id": true, "user": true}}}
	dataView := func(format string) string {
		fm, _ := json.Marshal(map[string]any{"session_id": json.RawMessage(format)})
		a, _ := json.Marshal(map[string]any{"title": "pamtrail-sessions*", "fieldFormatMap": string(fm)})
		return `{"id":"dv","type":"index-pattern","attributes":` + string(a) + `,"references":[]}`
	}
	search := `{"id":"s","type":"search","attributes":{"title":"S","columns":["user"],"kibanaSavedObjectMeta":{"searchSourceJSON":"{\"indexRefName\":\"ix\"}"}},"references":[{"id":"dv","name":"ix","type":"index-pattern"}]}`
	dashboard := `{"id":"d","type":"dashboard","attributes":{"title":"D","panelsJSON":"[{\"type\":\"search\",\"panelIndex\":\"1\",\"panelRefName\":\"panel_1\"}]"},"references":[{"id":"s","name":"1:panel_1","type":"search"}]}`
	link := func(target, query string) string {
		return `{"id":"url","params":{"urlTemplate":"../app/dashboards#/view/` + target + `?_a=(query:(language:kuery,query:'` + query + `'))"}}`
	}
	tests := []struct {
		name, format, want string
	}{
		{"valid", link("d", `session_id:%22{{value}}%22`), ""},
		{"unknown dashboard", link("nope", `session_id:%22{{value}}%22`), `links to dashboard "nope"`},
		{"query ignores the value", link("d", `session_id:*`), "does not name the session"},
		{"unmapped query field", link("d", `attributes.session.id:%22{{value}}%22`), `query field "attributes.session.id" exists in no data view`},
		{"absolute path", `{"id":"url","params":{"urlTemplate":"/app/dashboards#/view/d"}}`, "not ../app/dashboards"},
		{"no query", `{"id":"url","params":{"urlTemplate":"../app/dashboards#/view/d?_g=()"}}`, "no _a state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := savedObjects(t, []byte(strings.Join([]string{dataView(tt.format), search, dashboard}, "\n")))
			problems, _ := checkLinks(t, objs, mappings)
			if tt.want == "" {
				if len(problems) > 0 {
					t.Errorf("valid link reported: %v", problems)
				}
				return
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %v lack %q", problems, tt.want)
			}
		})
	}
}
