// Package elasticsearch embeds pamtrail's Elasticsearch component and index
// templates, the single source of the field names and types that the
// dashboards and the `pamtrail sessions` CLI query. `pamtrail setup
// elasticsearch` (gateway/setup) installs them.
//
// File names say what a file is: NAME.component.json is the body of
// PUT _component_template/NAME, NAME.template.json the body of
// PUT _index_template/NAME. Adding a template is adding a file.
package elasticsearch

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.json
var files embed.FS

// Kind is the Elasticsearch API a template is installed with.
type Kind int

const (
	// ComponentTemplate is installed with PUT _component_template/NAME.
	ComponentTemplate Kind = iota
	// IndexTemplate is installed with PUT _index_template/NAME. Index
	// templates are composed of component templates, so they come later.
	IndexTemplate
)

func (k Kind) String() string {
	if k == ComponentTemplate {
		return "component template"
	}
	return "index template"
}

// Template is one embedded template.
type Template struct {
	Name string
	Kind Kind
	// File is the embedded file's name, for error messages.
	File string
	Body []byte
}

var suffixes = map[string]Kind{
	".component.json": ComponentTemplate,
	".template.json":  IndexTemplate,
}

// Templates returns every embedded template in install order: component
// templates before the index templates that use them, each kind by name.
func Templates() ([]Template, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	var out []Template
	for _, e := range entries {
		t, err := parseName(e.Name())
		if err != nil {
			return nil, err
		}
		if t.Body, err = files.ReadFile(e.Name()); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func parseName(file string) (Template, error) {
	for suffix, kind := range suffixes {
		if name, ok := strings.CutSuffix(file, suffix); ok && name != "" {
			return Template{Name: name, Kind: kind, File: file}, nil
		}
	}
	return Template{}, fmt.Errorf("%s: embedded JSON file must be named NAME.component.json or NAME.template.json", file)
}
