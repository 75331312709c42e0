package setup

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/elastic/go-elasticsearch/v8"
)

// ClientConfig describes how to reach Elasticsearch. The password is passed
// in by the caller (read from an environment variable by the CLI) so that it
// never appears on a command line.
type ClientConfig struct {
	URL                string
	CAFile             string // PEM bundle trusted for https URLs; empty means the system pool
	InsecureSkipVerify bool
	Username           string
	Password           string
}

// Validate checks the configuration and names the offending field.
func (c ClientConfig) Validate() error {
	// Error messages never quote the raw URL: it may embed a password.
	u, err := url.Parse(c.URL)
	if err != nil {
		return errors.New("url: not a valid URL")
	}
	if u.User != nil {
		return errors.New("url: must not contain credentials; use the username and password settings")
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("url: %q is not an http:// or https:// URL with a host", u.Redacted())
	}
	if u.Scheme == "http" && (c.CAFile != "" || c.InsecureSkipVerify) {
		return errors.New("ca / insecure-skip-verify: only apply to an https:// url")
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("username: required when a password is set")
	}
	return nil
}

// NewElasticsearchClient builds a client for c.
func NewElasticsearchClient(c ClientConfig) (*elasticsearch.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := elasticsearch.Config{
		Addresses: []string{c.URL},
		Username:  c.Username,
		Password:  c.Password,
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		cfg.CACert = pem
	}
	if c.InsecureSkipVerify {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // explicitly requested by the operator
		cfg.Transport = transport
	}
	es, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Elasticsearch client for %s: %w", c.URL, err)
	}
	return es, nil
}
