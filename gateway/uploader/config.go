package uploader

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/encoding"
)

// Defaults.
const (
	DefaultInterval        = 10 * time.Second
	DefaultMaxBatchRecords = 1000
	DefaultMaxBatchBytes   = 4 << 20
	DefaultMaxInFlight     = 4
	DefaultTimeout         = 10 * time.Second
	DefaultInitialBackoff  = time.Second
	DefaultMaxBackoff      = 30 * time.Second
	// maxBatchesPerCycle bounds one cycle so that BeforeCycle keeps its
	// cadence while a large backlog drains; the next cycle starts at once.
	maxBatchesPerCycle = 50
)

// Compression values.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// Config configures an Uploader. Zero values mean the defaults.
type Config struct {
	// Endpoint is the collector's OTLP/gRPC address: host:port, or
	// dns:///name:port (dns://resolver/name:port) for a name that resolves
	// to several collectors, such as a Kubernetes headless Service: every
	// address is connected and requests are spread round-robin. Required.
	Endpoint string
	// Insecure disables TLS (local development only).
	Insecure bool
	// CAFile verifies the collector's certificate (PEM); default: system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate for mTLS (PEM).
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the collector's certificate.
	ServerName string
	// Compression is "gzip" (default) or "none".
	Compression string
	// Headers are sent with every request (e.g. an authorization token).
	// They are never logged.
	Headers map[string]string

	// Interval is the longest a record waits: a cycle starts every
	// Interval, and at once when MaxBatchRecords records are waiting.
	Interval time.Duration
	// MaxBatchRecords and MaxBatchBytes bound one export request.
	MaxBatchRecords int
	MaxBatchBytes   int
	// MaxInFlight is how many export requests may be outstanding at once;
	// they are acknowledged in spool order.
	MaxInFlight int
	// Timeout bounds one export request.
	Timeout time.Duration
	// InitialBackoff and MaxBackoff shape the retry delay after a failure
	// (exponential, with jitter). Retries never wait longer than MaxBackoff,
	// Interval or 2 s, whichever is shortest.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration

	// GatewayID and HostName go into the OTel resource of every record.
	// HostName defaults to os.Hostname().
	GatewayID string
	HostName  string

	// BeforeCycle, if set, runs at the start of an upload cycle, at most
	// once per Interval and at every Flush (the recorder appends heartbeats
	// and checkpoints for active sessions there).
	BeforeCycle func()
	// Logger receives failures and recoveries. Default: discard.
	Logger *slog.Logger

	// codec encodes the connection's messages; nil is logsCodec. Set only
	// by the benchmark that compares it with gRPC's protobuf codec.
	codec encoding.CodecV2
}

func (c *Config) applyDefaults() {
	if c.Compression == "" {
		c.Compression = CompressionGzip
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.MaxBatchRecords == 0 {
		c.MaxBatchRecords = DefaultMaxBatchRecords
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = DefaultInitialBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.HostName == "" {
		c.HostName, _ = os.Hostname()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// maxReconnectDelay bounds the gRPC connection's own reconnect backoff.
const maxReconnectDelay = time.Second

// maxRetryDelay bounds the wait between attempts after a failure. A retry
// is a one-record probe (probeRecords), so retrying often costs next to
// nothing, and a collector back from an outage sees the backlog about this
// long after it returns (a 300,000-record drain spent 16 s of its 33 s
// waiting out 10 s retries before).
const maxRetryDelay = 2 * time.Second

// retryCeiling is the longest wait between attempts after a failure:
// MaxBackoff, but never more than maxRetryDelay or Interval.
func (c *Config) retryCeiling() time.Duration {
	return min(c.MaxBackoff, c.Interval, maxRetryDelay)
}

// validate names the first invalid field.
func (c *Config) validate() error {
	if c.Endpoint == "" {
		return errors.New("uploader: Endpoint is required (host:port of the collector's OTLP/gRPC receiver)")
	}
	if err := ValidateEndpoint(c.Endpoint); err != nil {
		return fmt.Errorf("uploader: Endpoint: %w", err)
	}
	if c.Insecure && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "") {
		return errors.New("uploader: Insecure cannot be combined with CAFile, CertFile or KeyFile")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("uploader: CertFile and KeyFile must be set together (mTLS client certificate)")
	}
	if c.Compression != CompressionGzip && c.Compression != CompressionNone {
		return fmt.Errorf("uploader: Compression %q: want %q or %q", c.Compression, CompressionGzip, CompressionNone)
	}
	for name, d := range map[string]time.Duration{"Interval": c.Interval, "Timeout": c.Timeout, "InitialBackoff": c.InitialBackoff, "MaxBackoff": c.MaxBackoff} {
		if d < 0 {
			return fmt.Errorf("uploader: %s %v must be positive", name, d)
		}
	}
	if c.MaxBackoff < c.InitialBackoff {
		return fmt.Errorf("uploader: MaxBackoff %v is below InitialBackoff %v", c.MaxBackoff, c.InitialBackoff)
	}
	if c.MaxBatchRecords < 0 {
		return fmt.Errorf("uploader: MaxBatchRecords %d must be positive", c.MaxBatchRecords)
	}
	if c.MaxBatchBytes < 0 {
		return fmt.Errorf("uploader: MaxBatchBytes %d must be positive", c.MaxBatchBytes)
	}
	if c.MaxInFlight < 0 {
		return fmt.Errorf("uploader: MaxInFlight %d must be positive", c.MaxInFlight)
	}
	return nil
}

// tlsConfig builds the client TLS configuration from the files.
func (c *Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uploader: CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uploader: CAFile %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("uploader: CertFile/KeyFile: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// ValidateEndpoint accepts host:port, or a gRPC dns target
// (dns:///name:port, dns://resolver:port/name:port).
func ValidateEndpoint(endpoint string) error {
	hostPort := endpoint
	if rest, ok := strings.CutPrefix(endpoint, "dns:"); ok {
		rest, ok = strings.CutPrefix(rest, "//")
		if ok { // an authority (the DNS server) may sit before the next slash
			_, rest, ok = strings.Cut(rest, "/")
		}
		if !ok {
			return fmt.Errorf("%q: a dns target is dns:///name:port or dns://resolver/name:port", endpoint)
		}
		hostPort = rest
	}
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		return fmt.Errorf("%q is not host:port or dns:///name:port: %w", endpoint, err)
	}
	return nil
}
