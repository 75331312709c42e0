package control

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
)

// Client calls the admin API of one or more gateways.
type Client struct {
	Gateways []string // base URLs, e.g. https://gw1:7443
	token    string
	http     *http.Client
}

// ErrNotFound is a 404 from a gateway: it does not hold the session, or
// has no such lock.
var ErrNotFound = errors.New("not found")

// NewClient reads the admin token from tokenFile (refused if group or
// others may read it) and trusts caFile for https gateways.
func NewClient(gateways []string, tokenFile, caFile string) (*Client, error) {
	if len(gateways) == 0 {
		return nil, errors.New("no gateway admin URL: pass --gateway URL (repeatable) or set PAMTRAIL_GATEWAYS")
	}
	if tokenFile == "" {
		return nil, errors.New("no admin token: pass --token-file FILE or set PAMTRAIL_ADMIN_TOKEN_FILE")
	}
	raw, err := config.SecretRef{File: tokenFile}.Resolve() // refused if group or others may read it
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("admin CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin CA %s: no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	for _, g := range gateways {
		u, err := url.Parse(g)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("gateway admin URL %q: want http(s)://host:port", g)
		}
	}
	return &Client{Gateways: gateways, token: strings.TrimSpace(string(raw)),
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}}, nil
}

// do calls one gateway; out, if set, receives the JSON answer.
func (c *Client) do(ctx context.Context, base, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		var r Result
		if json.Unmarshal(raw, &r) == nil && r.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, r.Error)
		}
		return fmt.Errorf("%s", resp.Status)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Outcome is one gateway's answer to a broadcast action.
type Outcome struct {
	Gateway string
	Result  Result
	Err     error
}

// Terminate ends a session on whichever gateway holds it. preferred, the
// gateway id Elasticsearch recorded for the session (empty if unknown), is
// asked first; then every other gateway, until one holds it.
func (c *Client) Terminate(ctx context.Context, sessionID, reason, preferred string) (Outcome, error) {
	order := c.Gateways
	if preferred != "" {
		var first, rest []string
		for _, g := range c.Gateways {
			var info InfoResponse
			if err := c.do(ctx, g, http.MethodGet, pathInfo, nil, &info); err == nil && info.GatewayID == preferred {
				first = append(first, g)
			} else {
				rest = append(rest, g)
			}
		}
		order = append(first, rest...)
	}
	var errs []error
	for _, g := range order {
		var r Result
		err := c.do(ctx, g, http.MethodPost, pathSessions+"/"+url.PathEscape(sessionID)+"/terminate", TerminateRequest{Reason: reason}, &r)
		if err == nil {
			return Outcome{Gateway: g, Result: r}, nil
		}
		if !errors.Is(err, ErrNotFound) {
			errs = append(errs, fmt.Errorf("%s: %w", g, err))
		}
	}
	if len(errs) > 0 {
		return Outcome{}, fmt.Errorf("no gateway ended session %s; some could not be asked: %w", sessionID, errors.Join(errs...))
	}
	return Outcome{}, fmt.Errorf("no gateway holds a live session %s", sessionID)
}

// broadcast sends one action to every gateway.
func (c *Client) broadcast(ctx context.Context, method, path string, in any) []Outcome {
	out := make([]Outcome, len(c.Gateways))
	for i, g := range c.Gateways {
		out[i].Gateway = g
		out[i].Err = c.do(ctx, g, method, path, in, &out[i].Result)
	}
	return out
}

// Lock sets a lock on every gateway.
func (c *Client) Lock(ctx context.Context, req LockRequest) []Outcome {
	return c.broadcast(ctx, http.MethodPost, pathLocks, req)
}

// Unlock lifts a lock on every gateway.
func (c *Client) Unlock(ctx context.Context, kind, name string) []Outcome {
	return c.broadcast(ctx, http.MethodDelete, pathLocks+"/"+url.PathEscape(kind)+"/"+url.PathEscape(name), nil)
}

// Reload asks every gateway to re-read its config.
func (c *Client) Reload(ctx context.Context) []Outcome {
	return c.broadcast(ctx, http.MethodPost, pathReload, struct{}{})
}

// Locks returns each gateway's locks.
func (c *Client) Locks(ctx context.Context) map[string][]Lock {
	out := map[string][]Lock{}
	for _, g := range c.Gateways {
		var l []Lock
		if err := c.do(ctx, g, http.MethodGet, pathLocks, nil, &l); err == nil {
			out[g] = l
		} else {
			out[g] = nil
		}
	}
	return out
}
