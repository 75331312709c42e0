// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package rules // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/rules"

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pamtrail/pamtrail/gateway/schema"
)

//go:embed builtin.yaml
var builtinRulesYAML []byte

// Rule is one risk rule, as written in builtin.yaml and in the
// processor's risk::rules config. When a configured rule's id matches a
// built-in one, only the fields it sets replace the built-in values, so
// `{id: sql.grant_revoke, severity: high}` changes just the severity.
type Rule struct {
	ID       string   `mapstructure:"id" yaml:"id"`
	Target   string   `mapstructure:"target" yaml:"target"`
	Severity string   `mapstructure:"severity" yaml:"severity"`
	Reason   string   `mapstructure:"reason" yaml:"reason"`
	Keywords []string `mapstructure:"keywords" yaml:"keywords"`
	Pattern  string   `mapstructure:"pattern" yaml:"pattern"`
	Unless   string   `mapstructure:"unless" yaml:"unless"`
	// MinReturnedRows, when > 0, requires db.response.returned_rows >= it.
	MinReturnedRows int64 `mapstructure:"min_returned_rows" yaml:"min_returned_rows"`
}

// Config selects the effective rule set: the built-in rules, extended or
// overridden by configured ones, minus disabled ids.
type Config struct {
	// Builtin loads the embedded rule set; false starts from no rules.
	Builtin bool `mapstructure:"builtin"`
	// Rules are added, or, when the id exists, override the fields they set.
	Rules []Rule `mapstructure:"rules"`
	// Disabled lists rule ids to switch off.
	Disabled []string `mapstructure:"disabled"`
}

// Target is what a rule is matched against.
type Target int

const (
	SQL   Target = iota // db.query.text of pam.db.query
	Shell               // pam.ssh.command of pam.ssh.command
	File                // "<operation> <path>" of pam.ssh.file
	numTargets
)

var targetNames = map[string]Target{"sql": SQL, "shell": Shell, "file": File}

// compiledRule is a rule ready to match lower-cased text.
type compiledRule struct {
	id       string
	severity int // index in schema.RiskLevels
	reason   string
	keywords []string
	pattern  *regexp.Regexp
	unless   *regexp.Regexp
	minRows  int64
}

// Set is the effective, compiled rule set. It is immutable once built and
// safe for concurrent use.
type Set struct {
	Version  int // the built-in rule set's version: line
	byTarget [numTargets][]*compiledRule
}

// Match is one rule that matched an event.
type Match struct {
	RuleID   string
	Severity int // index in schema.RiskLevels
	Reason   string
}

// severityIndex maps a level name to its rank in schema.RiskLevels.
func severityIndex(level string) (int, bool) {
	i := slices.Index(schema.RiskLevels, level)
	return i, i > 0 // "none" is not a rule severity
}

// Load merges the built-in rules (unless disabled) with the
// configured ones and compiles the result.
func Load(cfg Config) (*Set, error) {
	var builtin struct {
		Version int    `yaml:"version"`
		Rules   []Rule `yaml:"rules"`
	}
	if cfg.Builtin {
		if err := yaml.Unmarshal(builtinRulesYAML, &builtin); err != nil {
			return nil, fmt.Errorf("rules/builtin.yaml: %w", err)
		}
	}
	rules := slices.Clone(builtin.Rules)
	for _, override := range cfg.Rules {
		if override.ID == "" {
			return nil, errors.New("rules: every rule needs an id")
		}
		if i := slices.IndexFunc(rules, func(r Rule) bool { return r.ID == override.ID }); i >= 0 {
			rules[i] = mergeRule(rules[i], override)
		} else {
			rules = append(rules, override)
		}
	}
	var errs error
	for _, id := range cfg.Disabled {
		if !slices.ContainsFunc(rules, func(r Rule) bool { return r.ID == id }) {
			errs = errors.Join(errs, fmt.Errorf("disabled: no rule with id %q", id))
		}
	}
	rs := &Set{Version: builtin.Version}
	seen := map[string]bool{}
	for _, rc := range rules {
		if seen[rc.ID] {
			errs = errors.Join(errs, fmt.Errorf("rule %q: duplicate id", rc.ID))
			continue
		}
		seen[rc.ID] = true
		if slices.Contains(cfg.Disabled, rc.ID) {
			continue
		}
		target, rule, err := compileRule(rc)
		if err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		rs.byTarget[target] = append(rs.byTarget[target], rule)
	}
	if errs != nil {
		return nil, errs
	}
	return rs, nil
}

// mergeRule overrides the fields of base that override sets.
func mergeRule(base, override Rule) Rule {
	if override.Target != "" {
		base.Target = override.Target
	}
	if override.Severity != "" {
		base.Severity = override.Severity
	}
	if override.Reason != "" {
		base.Reason = override.Reason
	}
	if override.Keywords != nil {
		base.Keywords = override.Keywords
	}
	if override.Pattern != "" {
		base.Pattern = override.Pattern
	}
	if override.Unless != "" {
		base.Unless = override.Unless
	}
	if override.MinReturnedRows != 0 {
		base.MinReturnedRows = override.MinReturnedRows
	}
	return base
}

func compileRule(rc Rule) (Target, *compiledRule, error) {
	var errs error
	target, ok := targetNames[rc.Target]
	if !ok {
		errs = errors.Join(errs, fmt.Errorf("rule %q: target: must be sql, shell or file, got %q", rc.ID, rc.Target))
	}
	severity, ok := severityIndex(rc.Severity)
	if !ok {
		errs = errors.Join(errs, fmt.Errorf("rule %q: severity: must be one of low, medium, high, critical, got %q", rc.ID, rc.Severity))
	}
	if rc.Reason == "" {
		errs = errors.Join(errs, fmt.Errorf("rule %q: reason: must not be empty", rc.ID))
	}
	if len(rc.Keywords) == 0 {
		errs = errors.Join(errs, fmt.Errorf("rule %q: keywords: at least one lower-case literal is required (it is the prefilter)", rc.ID))
	}
	for _, k := range rc.Keywords {
		if k == "" || k != strings.ToLower(k) {
			errs = errors.Join(errs, fmt.Errorf("rule %q: keywords: %q must be a non-empty lower-case literal", rc.ID, k))
		}
	}
	pattern, err := regexp.Compile(rc.Pattern)
	if rc.Pattern == "" {
		err = errors.New("must not be empty")
	}
	if err != nil {
		errs = errors.Join(errs, fmt.Errorf("rule %q: pattern: %w", rc.ID, err))
	}
	var unless *regexp.Regexp
	if rc.Unless != "" {
		if unless, err = regexp.Compile(rc.Unless); err != nil {
			errs = errors.Join(errs, fmt.Errorf("rule %q: unless: %w", rc.ID, err))
		}
	}
	if rc.MinReturnedRows < 0 {
		errs = errors.Join(errs, fmt.Errorf("rule %q: min_returned_rows: must be >= 0, got %d", rc.ID, rc.MinReturnedRows))
	}
	if errs != nil {
		return 0, nil, errs
	}
	return target, &compiledRule{
		id: rc.ID, severity: severity, reason: rc.Reason, keywords: rc.Keywords,
		pattern: pattern, unless: unless, minRows: rc.MinReturnedRows,
	}, nil
}

// Match appends to out every rule of target that matches text. returnedRows
// is the query's row count (0 for other targets).
func (rs *Set) Match(target Target, text string, returnedRows int64, out []Match) []Match {
	rules := rs.byTarget[target]
	if len(rules) == 0 || text == "" {
		return out
	}
	lower := strings.ToLower(text)
	for _, r := range rules {
		if !r.prefilter(lower) || (r.minRows > 0 && returnedRows < r.minRows) {
			continue
		}
		if !r.pattern.MatchString(lower) || (r.unless != nil && r.unless.MatchString(lower)) {
			continue
		}
		out = append(out, Match{RuleID: r.id, Severity: r.severity, Reason: r.reason})
	}
	return out
}

// prefilter reports whether any keyword occurs in text. Most records (plain
// SELECTs, ls, cd) contain none, which keeps regular expressions off the hot
// path.
func (r *compiledRule) prefilter(lower string) bool {
	for _, k := range r.keywords {
		if strings.Contains(lower, k) {
			return true
		}
	}
	return false
}

// Count is the number of enabled rules.
func (rs *Set) Count() int {
	n := 0
	for _, rules := range rs.byTarget {
		n += len(rules)
	}
	return n
}
