package setup

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/dashboards/kibana"
)

// kibanaTimeout bounds the import request when the caller's context has no
// deadline.
const kibanaTimeout = time.Minute

// spaceID is what Kibana accepts as a space identifier.
var spaceID = regexp.MustCompile(`^[a-z0-9_-]+$`)

// KibanaOptions says where and how to import the saved objects.
type KibanaOptions struct {
	URL                string // http(s)://kibana:5601, optionally with a base path
	Space              string // Kibana space id; empty means the default space
	APIKey             string // sent as "Authorization: ApiKey ..."; read from an env var by the CLI
	Username, Password string // basic auth, as an alternative to APIKey
	CAFile             string // PEM bundle trusted for https URLs
	InsecureSkipVerify bool
	// Objects replaces the embedded NDJSON; nil means the embedded set.
	Objects []byte
	// Progress, when set, receives a line per imported object.
	Progress io.Writer
	// HTTPClient replaces the client built from the TLS settings (tests).
	HTTPClient *http.Client
}

// Validate checks the options and names the offending field.
func (o KibanaOptions) Validate() error {
	u, err := url.Parse(o.URL)
	if err != nil {
		return errors.New("url: not a valid URL")
	}
	if u.User != nil {
		return errors.New("url: must not contain credentials; use the api key or username settings")
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("url: %q is not an http:// or https:// URL with a host", u.Redacted())
	}
	if u.Scheme == "http" && (o.CAFile != "" || o.InsecureSkipVerify) {
		return errors.New("ca / insecure-skip-verify: only apply to an https:// url")
	}
	if o.Space != "" && !spaceID.MatchString(o.Space) {
		return fmt.Errorf("space: %q is not a Kibana space id (lowercase letters, digits, _ and -)", o.Space)
	}
	if o.APIKey != "" && o.Username != "" {
		return errors.New("api key / username: set one of them, not both")
	}
	if o.Password != "" && o.Username == "" {
		return errors.New("username: required when a password is set")
	}
	return nil
}

// importURL is POST <base>[/s/<space>]/api/saved_objects/_import?overwrite=true.
// overwrite makes a re-run update the objects in place, like the
// Elasticsearch templates' PUTs.
func (o KibanaOptions) importURL() string {
	base := strings.TrimRight(o.URL, "/")
	if o.Space != "" && o.Space != "default" {
		base += "/s/" + o.Space
	}
	return base + "/api/saved_objects/_import?overwrite=true"
}

func (o KibanaOptions) httpClient() (*http.Client, error) {
	if o.HTTPClient != nil {
		return o.HTTPClient, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.CAFile != "" || o.InsecureSkipVerify {
		cfg := &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify} //nolint:gosec // explicitly requested by the operator
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca: %s holds no PEM certificate", o.CAFile)
			}
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr}, nil
}

// importResponse is Kibana's answer to _import.
type importResponse struct {
	Success        bool `json:"success"`
	SuccessCount   int  `json:"successCount"`
	SuccessResults []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"successResults"`
	Errors []struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Title string `json:"title"`
		Error struct {
			Type       string `json:"type"`
			Message    string `json:"message"`
			References []struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			} `json:"references"`
		} `json:"error"`
	} `json:"errors"`
	// Set instead on an HTTP error (400 bad file, 401, 403, ...).
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

// InstallKibana imports pamtrail's saved objects into Kibana. Running it
// again overwrites them, so it also upgrades an older installation. An
// import Kibana only partly accepted is an error listing every refused
// object and why.
func InstallKibana(ctx context.Context, o KibanaOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	objects := o.Objects
	if objects == nil {
		objects = kibana.SavedObjects
	}
	client, err := o.httpClient()
	if err != nil {
		return err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", kibana.SavedObjectsFile)
	if err != nil {
		return err
	}
	if _, err := part.Write(objects); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, kibanaTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.importURL(), &body)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("kbn-xsrf", "true") // Kibana refuses state-changing requests without it
	switch {
	case o.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+o.APIKey)
	case o.Username != "":
		req.SetBasicAuth(o.Username, o.Password)
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("importing saved objects into Kibana: %w", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return importResult(res.Status, res.StatusCode, raw, o.Progress)
}

func importResult(status string, code int, raw []byte, progress io.Writer) error {
	var r importResponse
	jsonErr := json.Unmarshal(raw, &r)
	if code/100 != 2 {
		msg := r.Message
		if jsonErr != nil || msg == "" {
			msg = strings.TrimSpace(string(raw))
			if len(msg) > maxErrorBody {
				msg = msg[:maxErrorBody]
			}
		}
		hint := ""
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			hint = " (check the API key or user and its Kibana privileges)"
		}
		return fmt.Errorf("import refused: Kibana answered %s: %s%s", status, msg, hint)
	}
	if jsonErr != nil {
		return fmt.Errorf("import: Kibana answered %s with an unreadable body: %v", status, jsonErr)
	}
	if progress != nil {
		for _, s := range r.SuccessResults {
			fmt.Fprintf(progress, "imported %s %s\n", s.Type, s.ID)
		}
	}
	if r.Success {
		return nil
	}
	var failed []string
	for _, e := range r.Errors {
		reason := e.Error.Type
		if e.Error.Message != "" {
			reason += ": " + e.Error.Message
		}
		for _, ref := range e.Error.References {
			reason += fmt.Sprintf(" %s/%s", ref.Type, ref.ID)
		}
		failed = append(failed, fmt.Sprintf("%s %s (%q): %s", e.Type, e.ID, e.Title, reason))
	}
	return fmt.Errorf("import incomplete: Kibana imported %d objects and refused %d: %s", r.SuccessCount, len(r.Errors), strings.Join(failed, "; "))
}
