// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor"

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
)

// Config is the session processor's configuration.
type Config struct {
	// FlushInterval is the longest a record waits in the processor's buffer
	// before it is handed to the next consumer. ConsumeLogs returns only once
	// that hand-off is done, so the sender's export timeout must exceed it.
	FlushInterval time.Duration `mapstructure:"flush_interval"`

	// SendBatchSize flushes the buffer early once this many records are
	// pending, bounding the size of a single hand-off.
	SendBatchSize int `mapstructure:"send_batch_size"`

	// MaxPendingRecords caps the buffer. When it is full ConsumeLogs refuses
	// new data with a retryable error: the gateway keeps the records in its
	// encrypted spool and retries, instead of the collector growing without
	// bound.
	MaxPendingRecords int `mapstructure:"max_pending_records"`

	// HeartbeatInterval is the gateway's heartbeat (upload) cadence.
	HeartbeatInterval time.Duration `mapstructure:"heartbeat_interval"`

	// LostAfterHeartbeats is how many heartbeat intervals a session may stay
	// silent before it is marked lost: a gateway that crashed is not shown as
	// live for ever, while one slow upload does not flap the status.
	LostAfterHeartbeats int `mapstructure:"lost_after_heartbeats"`

	// Retention is how long a finished (ended, failed or lost) session is kept
	// in the processor's state after its last activity. Within it, replayed
	// records merge into the finished session instead of re-opening it.
	Retention time.Duration `mapstructure:"retention"`

	// Storage is the storage extension (for example file_storage) that keeps
	// session state across collector restarts. Without it, state is in memory
	// only.
	Storage *component.ID `mapstructure:"storage"`

	// Sessions configures the writer of the sessions index.
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
	// Endpoint is the Elasticsearch URL. Empty disables the writer: state and
	// risk attributes still work, but no session documents are written.
	Endpoint string `mapstructure:"endpoint"`
	// Index is the index name (not a data stream: documents are updated).
	Index    string                 `mapstructure:"index"`
	User     string                 `mapstructure:"user"`
	Password configopaque.String    `mapstructure:"password"`
	TLS      configtls.ClientConfig `mapstructure:"tls"`
	// Timeout bounds one bulk request.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxRetryInterval caps the backoff between failed writes. Writes are
	// retried until they succeed; a newer state of a session replaces an
	// older unwritten one.
	MaxRetryInterval time.Duration `mapstructure:"max_retry_interval"`
}

// RiskConfig extends or overrides the built-in rule set (rules/builtin.yaml).
type RiskConfig struct {
	// Builtin loads the embedded rule set; false starts from no rules.
	Builtin bool `mapstructure:"builtin"`
	// Rules are added, or, when the id exists, override the fields they set.
	Rules []RuleConfig `mapstructure:"rules"`
	// Disabled lists rule ids to switch off.
	Disabled []string `mapstructure:"disabled"`
	// MaxFindings caps the findings kept on a session document; the risk
	// level still counts every finding.
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

// Summary providers.
const (
	providerRules  = "rules"
	providerOpenAI = "openai"
	providerNone   = "none"
)

// lostAfter is the silence after which an active session becomes lost.
func (cfg *Config) lostAfter() time.Duration {
	return time.Duration(cfg.LostAfterHeartbeats) * cfg.HeartbeatInterval
}

// Validate checks the configuration and names the offending field.
func (cfg *Config) Validate() error {
	var errs error
	if cfg.FlushInterval <= 0 {
		errs = errors.Join(errs, fmt.Errorf("flush_interval: must be > 0, got %s", cfg.FlushInterval))
	}
	if cfg.SendBatchSize <= 0 {
		errs = errors.Join(errs, fmt.Errorf("send_batch_size: must be > 0, got %d", cfg.SendBatchSize))
	}
	if cfg.MaxPendingRecords < cfg.SendBatchSize {
		errs = errors.Join(errs, fmt.Errorf("max_pending_records: must be >= send_batch_size (%d), got %d",
			cfg.SendBatchSize, cfg.MaxPendingRecords))
	}
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
	if c.Endpoint == "" {
		return nil
	}
	var errs error
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = errors.Join(errs, fmt.Errorf("sessions_index::endpoint: must be an http(s) URL, got %q", c.Endpoint))
	}
	if c.Index == "" {
		errs = errors.Join(errs, errors.New("sessions_index::index: must not be empty"))
	}
	if c.Timeout <= 0 {
		errs = errors.Join(errs, fmt.Errorf("sessions_index::timeout: must be > 0, got %s", c.Timeout))
	}
	if c.MaxRetryInterval <= 0 {
		errs = errors.Join(errs, fmt.Errorf("sessions_index::max_retry_interval: must be > 0, got %s", c.MaxRetryInterval))
	}
	if c.Password != "" && c.User == "" {
		errs = errors.Join(errs, errors.New("sessions_index::user: must be set when password is"))
	}
	return errs
}

func (c *RiskConfig) validate() error {
	var errs error
	if c.MaxFindings <= 0 {
		errs = errors.Join(errs, fmt.Errorf("risk::max_findings: must be > 0, got %d", c.MaxFindings))
	}
	// Compiling catches bad patterns, severities and targets with the rule id.
	if _, err := loadRuleSet(*c); err != nil {
		errs = errors.Join(errs, fmt.Errorf("risk: %w", err))
	}
	return errs
}

func (c *SummaryConfig) validate() error {
	var errs error
	switch c.Provider {
	case providerRules, providerNone:
	case providerOpenAI:
		errs = errors.Join(errs, c.OpenAI.validate())
	default:
		errs = errors.Join(errs, fmt.Errorf("summary::provider: must be %q, %q or %q, got %q",
			providerRules, providerOpenAI, providerNone, c.Provider))
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
