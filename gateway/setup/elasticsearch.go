// Package setup installs what pamtrail needs in the systems it writes to:
// Elasticsearch templates now, Kibana saved objects later.
package setup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	templates "github.com/pamtrail/pamtrail/dashboards/elasticsearch"
)

// maxErrorBody bounds how much of an Elasticsearch error response is quoted
// in an error message.
const maxErrorBody = 4 << 10

// ElasticsearchOptions tunes InstallElasticsearch.
type ElasticsearchOptions struct {
	// Progress, when set, receives one human-readable line per installed
	// template.
	Progress io.Writer
	// Templates replaces the embedded templates; nil means the embedded set.
	Templates []templates.Template
}

// InstallElasticsearch installs pamtrail's component and index templates.
// Every request is a PUT of the whole template, so running it again is
// harmless and brings an older installation up to date. Existing backing
// indices keep their mappings until the next rollover; new fields therefore
// reach an existing data stream only after a rollover.
func InstallElasticsearch(ctx context.Context, es *elasticsearch.Client, opts ElasticsearchOptions) error {
	tmpls := opts.Templates
	if tmpls == nil {
		var err error
		if tmpls, err = templates.Templates(); err != nil {
			return fmt.Errorf("reading embedded templates: %w", err)
		}
	}
	for _, t := range tmpls {
		if err := installTemplate(ctx, es, t); err != nil {
			return err
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "installed %s %s\n", t.Kind, t.Name)
		}
	}
	return nil
}

func installTemplate(ctx context.Context, es *elasticsearch.Client, t templates.Template) error {
	var (
		res *esapi.Response
		err error
	)
	body := bytes.NewReader(t.Body)
	switch t.Kind {
	case templates.ComponentTemplate:
		res, err = es.Cluster.PutComponentTemplate(t.Name, body, es.Cluster.PutComponentTemplate.WithContext(ctx))
	case templates.IndexTemplate:
		res, err = es.Indices.PutIndexTemplate(t.Name, body, es.Indices.PutIndexTemplate.WithContext(ctx))
	default:
		return fmt.Errorf("%s: unknown template kind %d", t.File, t.Kind)
	}
	if err != nil {
		return fmt.Errorf("installing %s %q (%s): %w", t.Kind, t.Name, t.File, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return fmt.Errorf("installing %s %q (%s): %w", t.Kind, t.Name, t.File, responseError(res))
	}
	_, _ = io.Copy(io.Discard, res.Body) // drain so the connection is reused
	return nil
}

// responseError quotes the status and (the start of) the body of a failed
// Elasticsearch response, which names the offending field or setting.
func responseError(res *esapi.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	msg := strings.TrimSpace(string(raw))
	if msg == "" {
		msg = http.StatusText(res.StatusCode)
	}
	return fmt.Errorf("elasticsearch answered %s: %s", res.Status(), msg)
}
