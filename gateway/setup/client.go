package setup

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
)

// ClientConfig describes how to reach Elasticsearch. The password is passed
// in by the caller (read from an environment variable by the CLI) so that it
// never appears on a command line.
type ClientConfig struct {
	// URL is one node, or several of a cluster separated by commas; requests
	// go to the next node when one fails.
	URL                string
	CAFile             string // PEM bundle trusted for https URLs; empty means the system pool
	InsecureSkipVerify bool
	Username           string
	Password           string
	// APIKey is an Elasticsearch API key (base64 "id:key"), instead of a
	// username and password.
	APIKey string
}

// urls splits URL into the cluster's nodes.
func (c ClientConfig) urls() []string {
	return strings.Split(c.URL, ",")
}

// Validate checks the configuration and names the offending field.
func (c ClientConfig) Validate() error {
	for _, raw := range c.urls() {
		if err := c.validateURL(raw); err != nil {
			return err
		}
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("username: required when a password is set")
	}
	if c.APIKey != "" && c.Username != "" {
		return errors.New("api key: use either an API key or a username and password, not both")
	}
	return nil
}

func (c ClientConfig) validateURL(raw string) error {
	// Error messages never quote the raw URL: it may embed a password.
	u, err := url.Parse(raw)
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
	return nil
}

// NewElasticsearchClient builds a client for c.
func NewElasticsearchClient(c ClientConfig) (*elasticsearch.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := elasticsearch.Config{
		Addresses: c.urls(),
		Username:  c.Username,
		Password:  c.Password,
		APIKey:    c.APIKey,
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
