package elasticsearch

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestTemplatesOrderAndNames(t *testing.T) {
	tmpls, err := Templates()
	if err != nil {
		t.Fatal(err)
	}
	components := map[string]bool{}
	sawIndexTemplate := false
	for _, tt := range tmpls {
		var body struct {
			ComposedOf []string `json:"composed_of"`
		}
		if err := json.Unmarshal(tt.Body, &body); err != nil {
			t.Fatalf("%s: invalid JSON: %v", tt.File, err)
		}
		switch tt.Kind {
		case ComponentTemplate:
			if sawIndexTemplate {
				t.Errorf("%s: component template listed after an index template; it must be installed first", tt.File)
			}
			components[tt.Name] = true
		case IndexTemplate:
			sawIndexTemplate = true
			for _, c := range body.ComposedOf {
				if !components[c] {
					t.Errorf("%s: composed_of %q, which is not an embedded component template", tt.File, c)
				}
			}
		}
	}
	if !sawIndexTemplate {
		t.Fatal("no index template embedded")
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		file     string
		wantName string
		wantKind Kind
		wantErr  bool
	}{
		{file: "pamtrail-settings.component.json", wantName: "pamtrail-settings", wantKind: ComponentTemplate},
		{file: "pamtrail-events.template.json", wantName: "pamtrail-events", wantKind: IndexTemplate},
		{file: "pamtrail-events.json", wantErr: true},
		{file: ".template.json", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseName(tt.file)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseName(%q) = %+v, want an error", tt.file, got)
				}
				return
			}
			if err != nil || got.Name != tt.wantName || got.Kind != tt.wantKind {
				t.Fatalf("parseName(%q) = %+v, %v; want %s %s", tt.file, got, err, tt.wantKind, tt.wantName)
			}
		})
	}
}

// TestEventsTemplateMapsEverySchemaAttribute is the contract between
// gateway/schema and the template: every attribute the recorder can write has
// an explicit mapping, so none falls to dynamic mapping by accident.
func TestEventsTemplateMapsEverySchemaAttribute(t *testing.T) {
	mapped := eventsAttributeMappings(t)
	// Stripped by the exporter before indexing: never a document field.
	notIndexed := map[string]bool{"elasticsearch.document_id": true}
	// Set by the collector's session processor (TODO: move to schema).
	extra := []string{"pam.schema.violation"}

	keys := append(schemaAttributeKeys(t), extra...)
	for _, key := range keys {
		if notIndexed[key] {
			if _, ok := mapped[key]; ok {
				t.Errorf("attributes.%s is mapped but the exporter never indexes it", key)
			}
			continue
		}
		if _, ok := mapped[key]; !ok {
			t.Errorf("attribute %q (gateway/schema) has no explicit mapping under attributes in pamtrail-events.template.json", key)
		}
	}
}

func eventsAttributeMappings(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	raw, err := files.ReadFile("pamtrail-events.template.json")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Template struct {
			Mappings struct {
				Properties struct {
					Attributes struct {
						Properties map[string]json.RawMessage `json:"properties"`
					} `json:"attributes"`
				} `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl.Template.Mappings.Properties.Attributes.Properties
}

// schemaAttributeKeys returns the values of every Attr* constant in
// gateway/schema/schema.go.
func schemaAttributeKeys(t *testing.T) []string {
	t.Helper()
	keys := schemaConstants(t, "Attr")
	if len(keys) < 20 {
		t.Fatalf("found only %d Attr* constants in gateway/schema; did the schema move?", len(keys))
	}
	return keys
}

// schemaConstants returns the values of the string constants in
// gateway/schema/schema.go whose names start with prefix (the names of
// other kinds, such as SessionsIndex, are skipped).
func schemaConstants(t *testing.T, prefix string) []string {
	t.Helper()
	path := filepath.Join("..", "..", "gateway", "schema", "schema.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, prefix) || strings.HasSuffix(name.Name, "Index") ||
					strings.HasSuffix(name.Name, "IndexPattern") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, v)
			}
		}
	}
	return keys
}

// TestSessionsTemplateMapsEverySessionField is the contract between the
// Session* document fields of gateway/schema and pamtrail-sessions.template.json.
func TestSessionsTemplateMapsEverySessionField(t *testing.T) {
	raw, err := files.ReadFile("pamtrail-sessions.template.json")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		DataStream *json.RawMessage `json:"data_stream"`
		Template   struct {
			Mappings struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	if tmpl.DataStream != nil {
		t.Error("pamtrail-sessions must be a plain index: data streams accept only create, and session documents are updated")
	}
	fields := schemaConstants(t, "Session")
	if len(fields) < 15 {
		t.Fatalf("found only %d Session* constants in gateway/schema", len(fields))
	}
	for _, f := range fields {
		if _, ok := tmpl.Template.Mappings.Properties[f]; !ok {
			t.Errorf("session field %q (gateway/schema) has no mapping in pamtrail-sessions.template.json", f)
		}
	}
}
