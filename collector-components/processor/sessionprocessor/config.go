// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/rules"
	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/summary"
)

// Config is the session processor's configuration. There is no batching
// setting: every request is handed on at once, and the exporter batches for
// Elasticsearch.
type Config struct {
	// HeartbeatInterval is the gateway's heartbeat (upload) cadence.
	HeartbeatInterval time.Duration `mapstructure:"heartbeat_interval"`

	// LostAfterHeartbeats is how many heartbeat intervals a session may stay
	// silent before it is marked lost: a gateway that crashed is not shown as
	// live for ever, while one slow upload does not flap the status.
	LostAfterHeartbeats int `mapstructure:"lost_after_heartbeats"`

	// Retention is how long a finished session stays in a collector's
	// memory when there is no sessions index (state in memory only).
	Retention time.Duration `mapstructure:"retention"`

	// Sessions is the sessions index, where the state of every session is
	// kept and shared by all collectors.
	Sessions SessionsIndexConfig `mapstructure:"sessions_index"`

	// Risk configures the risk rules.
	Risk RiskConfig `mapstructure:"risk"`

	// Summary configures the end-of-session summaries.
	Summary SummaryConfig `mapstructure:"summary"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SessionsIndexConfig is where the one-document-per-session index lives.
type SessionsIndexConfig struct {
	// Endpoints are the Elasticsearch URLs, tried in turn; list several
	// nodes of a cluster. Endpoint is the single-URL form. Both empty: state
	// is kept in this collector's memory and no document is written.
	Endpoints []string `mapstructure:"endpoints"`
	Endpoint  string   `mapstructure:"endpoint"`
	// Index is the index name (not a data stream: documents are updated).
	Index string `mapstructure:"index"`
	// EventsIndex is read for the transcript of a model-backed summary.
	EventsIndex string              `mapstructure:"events_index"`
	User        string              `mapstructure:"user"`
	Password    configopaque.String `mapstructure:"password"`
	// APIKey is the base64 "id:key" credential of an Elasticsearch API key,
	// sent as "Authorization: ApiKey ..."; use it or user/password.
	APIKey configopaque.String    `mapstructure:"api_key"`
	TLS    configtls.ClientConfig `mapstructure:"tls"`
	// Timeout bounds one request.
	Timeout time.Duration `mapstructure:"timeout"`
}

// urls is the effective endpoint list.
func (c *SessionsIndexConfig) urls() []string {
	if c.Endpoint != "" {
		return append([]string{c.Endpoint}, c.Endpoints...)
	}
	return c.Endpoints
}

// RiskConfig extends or overrides the built-in rule set (internal/rules/builtin.yaml).
type RiskConfig struct {
	rules.Config `mapstructure:",squash"`
	// MaxFindings caps the findings kept on a session document; the risk
	// level still counts every finding and risk_findings_dropped the rest.
	MaxFindings int `mapstructure:"max_findings"`
}

// SummaryConfig selects the summary provider.
type SummaryConfig struct {
	// Provider is "rules" (offline, deterministic), "openai" or "none".
	Provider string       `mapstructure:"provider"`
	OpenAI   OpenAIConfig `mapstructure:"openai"`
}

// OpenAIConfig points at an OpenAI-compatible chat-completions endpoint.
type OpenAIConfig struct {
	// BaseURL is the API root, e.g. https://api.openai.com/v1; the request
	// goes to BaseURL + "/chat/completions".
	BaseURL string `mapstructure:"base_url"`
	Model   string `mapstructure:"model"`
	// APIKeyEnv names the environment variable holding the API key, so the
	// key never sits in a config file.
	APIKeyEnv string        `mapstructure:"api_key_env"`
	Timeout   time.Duration `mapstructure:"timeout"`
	// MaxInputChars caps the transcript sent to the model.
	MaxInputChars int `mapstructure:"max_input_chars"`
}

// lostAfter is the silence after which an active session becomes lost.
func (cfg *Config) lostAfter() time.Duration {
	return time.Duration(cfg.LostAfterHeartbeats) * cfg.HeartbeatInterval
}

// Validate checks the configuration and names the offending field.
func (cfg *Config) Validate() error {
	var errs error
	if cfg.HeartbeatInterval <= 0 {
		errs = errors.Join(errs, fmt.Errorf("heartbeat_interval: must be > 0, got %s", cfg.HeartbeatInterval))
	}
	if cfg.LostAfterHeartbeats < 2 {
		errs = errors.Join(errs, fmt.Errorf("lost_after_heartbeats: must be >= 2 (one late upload must not mark a session lost), got %d",
			cfg.LostAfterHeartbeats))
	}
	if cfg.Retention < cfg.lostAfter() {
		errs = errors.Join(errs, fmt.Errorf("retention: must be >= heartbeat_interval × lost_after_heartbeats (%s), got %s",
			cfg.lostAfter(), cfg.Retention))
	}
	errs = errors.Join(errs, cfg.Sessions.validate(), cfg.Risk.validate(), cfg.Summary.validate())
	return errs
}

func (c *SessionsIndexConfig) validate() error {
	urls := c.urls()
	if len(urls) == 0 {
		return nil
	}
	var errs error
	for _, endpoint := range urls {
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = errors.Join(errs, fmt.Errorf("sessions_index::endpoints: must be http(s) URLs, got %q", endpoint))
		}
	}
	if c.Index == "" {
		errs = errors.Join(errs, errors.New("sessions_index::index: must not be empty"))
	}
	if c.EventsIndex == "" {
		errs = errors.Join(errs, errors.New("sessions_index::events_index: must not be empty"))
	}
	if c.Timeout <= 0 {
		errs = errors.Join(errs, fmt.Errorf("sessions_index::timeout: must be > 0, got %s", c.Timeout))
	}
	if c.Password != "" && c.User == "" {
		errs = errors.Join(errs, errors.New("sessions_index::user: must be set when password is"))
	}
	if c.APIKey != "" && c.User != "" {
		errs = errors.Join(errs, errors.New("sessions_index::api_key: use either api_key or user/password, not both"))
	}
	if err := c.TLS.Config.Validate(); err != nil {
		errs = errors.Join(errs, fmt.Errorf("sessions_index::tls: %w", err))
	}
	return errs
}

func (c *RiskConfig) validate() error {
	var errs error
	if c.MaxFindings <= 0 {
		errs = errors.Join(errs, fmt.Errorf("risk::max_findings: must be > 0, got %d", c.MaxFindings))
	}
	// Compiling catches bad patterns, severities and targets with the rule id.
	if _, err := rules.Load(c.Config); err != nil {
		errs = errors.Join(errs, fmt.Errorf("risk: %w", err))
	}
	return errs
}

func (c *SummaryConfig) validate() error {
	var errs error
	switch c.Provider {
	case summary.ProviderRules, summary.ProviderNone:
	case summary.ProviderOpenAI:
		errs = errors.Join(errs, c.OpenAI.validate())
	default:
		errs = errors.Join(errs, fmt.Errorf("summary::provider: must be %q, %q or %q, got %q",
			summary.ProviderRules, summary.ProviderOpenAI, summary.ProviderNone, c.Provider))
	}
	return errs
}

func (c *OpenAIConfig) validate() error {
	var errs error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = errors.Join(errs, fmt.Errorf("summary::openai::base_url: must be an http(s) URL, got %q", c.BaseURL))
	}
	if c.Model == "" {
		errs = errors.Join(errs, errors.New("summary::openai::model: must not be empty"))
	}
	if c.APIKeyEnv == "" {
		errs = errors.Join(errs, errors.New("summary::openai::api_key_env: must name the environment variable holding the API key"))
	}
	if c.Timeout <= 0 {
		errs = errors.Join(errs, fmt.Errorf("summary::openai::timeout: must be > 0, got %s", c.Timeout))
	}
	if c.MaxInputChars <= 0 {
		errs = errors.Join(errs, fmt.Errorf("summary::openai::max_input_chars: must be > 0, got %d", c.MaxInputChars))
	}
	return errs
}
