package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// serveMetrics exposes the gateway's OTel metrics on a Prometheus endpoint
// (/metrics) and its readiness on /healthz (health.go). All instruments are observable: they read the spool, uploader
// and recorder counters at scrape time, so nothing is added to the data path.
func (g *Gateway) serveMetrics(addr string) error {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return err
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	if err := g.registerInstruments(provider.Meter("github.com/pamtrail/pamtrail/gateway")); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { g.readiness().ServeHTTP(w, r) })
	g.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := g.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("metrics endpoint stopped", "error", err)
		}
		_ = provider.Shutdown(context.Background())
	}()
	g.log.Info("metrics endpoint", "address", ln.Addr().String())
	return nil
}

func (g *Gateway) registerInstruments(m metric.Meter) error {
	spoolBytes, _ := m.Int64ObservableGauge("pamtrail.spool.bytes", metric.WithUnit("By"), metric.WithDescription("bytes of all spool segments"))
	pending, _ := m.Int64ObservableGauge("pamtrail.spool.records_pending", metric.WithDescription("records spooled and not yet acknowledged by the collector"))
	oldest, _ := m.Float64ObservableGauge("pamtrail.spool.oldest_unacked_age", metric.WithUnit("s"), metric.WithDescription("age of the oldest unacknowledged record"))
	lost, _ := m.Int64ObservableCounter("pamtrail.spool.records_lost", metric.WithDescription("records found damaged at recovery or when read"))
	dropped, _ := m.Int64ObservableCounter("pamtrail.spool.records_dropped", metric.WithDescription("records deleted by overflow: drop-oldest"))
	uploaded, _ := m.Int64ObservableCounter("pamtrail.upload.records", metric.WithDescription("records acknowledged by the collector"))
	failures, _ := m.Int64ObservableCounter("pamtrail.upload.failures", metric.WithDescription("failed upload cycles"))
	lag, _ := m.Float64ObservableGauge("pamtrail.upload.lag", metric.WithUnit("s"), metric.WithDescription("time since the last successful upload"))
	recErrors, _ := m.Int64ObservableCounter("pamtrail.recording.errors", metric.WithDescription("events that could not be spooled"))
	sessions, _ := m.Int64ObservableGauge("pamtrail.sessions.active", metric.WithDescription("live sessions"))
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := g.spool.Stats()
		o.ObserveInt64(spoolBytes, st.BytesOnDisk)
		o.ObserveInt64(pending, int64(st.RecordsPending))
		o.ObserveFloat64(oldest, st.OldestUnackedAge().Seconds())
		o.ObserveInt64(lost, int64(st.RecoveredLost))
		o.ObserveInt64(dropped, int64(st.Dropped))
		us := g.uploader.Stats()
		o.ObserveInt64(uploaded, int64(us.Uploaded))
		o.ObserveInt64(failures, int64(us.Failures))
		if !us.LastSuccess.IsZero() {
			o.ObserveFloat64(lag, time.Since(us.LastSuccess).Seconds())
		}
		_, recFail := g.rec.Stats()
		o.ObserveInt64(recErrors, recFail)
		o.ObserveInt64(sessions, int64(g.rec.ActiveSessions()))
		return nil
	}, spoolBytes, pending, oldest, lost, dropped, uploaded, failures, lag, recErrors, sessions)
	return err
}
