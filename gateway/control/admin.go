package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// ActionRecorder records admin actions (recorder.OTel does).
type ActionRecorder interface {
	AdminAction(ctx context.Context, a recorder.AdminAction) error
}

// ReloadFunc re-reads the config file and applies it (Control.Reload).
type ReloadFunc func(actor string) (ended int, warnings []string, err error)

// AdminServer is the admin API: HTTP+JSON, bearer-token identities, TLS
// off loopback. Every request that reaches a handler, allowed or refused,
// is recorded as a pam.admin.action event.
type AdminServer struct {
	ctl       *Control
	rec       ActionRecorder
	reload    ReloadFunc
	gatewayID string
	log       *slog.Logger
	srv       *http.Server
	ln        net.Listener
}

// API paths, shared with the CLI client.
const (
	pathInfo     = "/v1/info"
	pathSessions = "/v1/sessions"
	pathLocks    = "/v1/locks"
	pathReload   = "/v1/reload"
)

// Request and response bodies.
type (
	// InfoResponse names the gateway behind an admin address.
	InfoResponse struct {
		GatewayID string `json:"gateway_id"`
	}
	// TerminateRequest ends one session.
	TerminateRequest struct {
		Reason string `json:"reason"`
	}
	// LockRequest sets a lock; For is a Go duration ("1h"), empty for none.
	LockRequest struct {
		Kind   string `json:"kind"`
		Name   string `json:"name"`
		For    string `json:"for,omitempty"`
		Reason string `json:"reason,omitempty"`
	}
	// Result is the answer to an action.
	Result struct {
		GatewayID string   `json:"gateway_id"`
		Ended     int      `json:"sessions_ended"`
		Warnings  []string `json:"warnings,omitempty"`
		Error     string   `json:"error,omitempty"`
	}
	// SessionInfo is one live session.
	SessionInfo struct {
		ID       string    `json:"id"`
		User     string    `json:"user"`
		Account  string    `json:"account"`
		Protocol string    `json:"protocol"`
		Start    time.Time `json:"start"`
	}
)

// StartAdmin listens on cfg.Admin.Address and serves the API.
func StartAdmin(ctl *Control, rec ActionRecorder, reload ReloadFunc, log *slog.Logger) (*AdminServer, error) {
	cfg := ctl.Config()
	a := cfg.Admin
	s := &AdminServer{ctl: ctl, rec: rec, reload: reload, gatewayID: cfg.Gateway.ID, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathInfo, s.authed("info", s.info))
	mux.HandleFunc("GET "+pathSessions, s.authed("sessions", s.sessions))
	mux.HandleFunc("POST "+pathSessions+"/{id}/terminate", s.authed(schema.AdminTerminate, s.terminate))
	mux.HandleFunc("GET "+pathLocks, s.authed("locks", s.listLocks))
	mux.HandleFunc("POST "+pathLocks, s.authed(schema.AdminLock, s.lock))
	mux.HandleFunc("DELETE "+pathLocks+"/{kind}/{name}", s.authed(schema.AdminUnlock, s.unlock))
	mux.HandleFunc("POST "+pathReload, s.authed(schema.AdminReload, s.reloadHandler))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	ln, err := net.Listen("tcp", a.Address)
	if err != nil {
		return nil, fmt.Errorf("admin.address: %w", err)
	}
	if a.TLS != nil {
		tc, err := adminTLS(a.TLS)
		if err != nil {
			ln.Close()
			return nil, err
		}
		ln = tls.NewListener(ln, tc)
	}
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin API stopped", "error", err)
		}
	}()
	log.Info("admin API listening", "address", ln.Addr().String(), "tls", a.TLS != nil)
	return s, nil
}

func adminTLS(t *config.ServerTLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("admin.tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("admin.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("admin.tls.client_ca_file: no PEM certificate found")
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Addr is the bound address (tests listen on :0).
func (s *AdminServer) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the API.
func (s *AdminServer) Shutdown(ctx context.Context) error {
	if s == nil || s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// identify returns the admin identity whose token the request carries.
func (s *AdminServer) identify(r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(token))
	found := ""
	for _, id := range s.ctl.Config().Admin.Identities {
		want, err := hex.DecodeString(id.TokenSHA256)
		if err == nil && subtle.ConstantTimeCompare(sum[:], want) == 1 {
			found = id.Name
		}
	}
	return found, found != ""
}

// action is one handled request: what it did, for the record.
type action struct {
	identity, target, reason, result string
	ended                            int
}

func (s *AdminServer) authed(op string, h func(w http.ResponseWriter, r *http.Request, act *action)) http.HandlerFunc {
	mutating := op == schema.AdminTerminate || op == schema.AdminLock || op == schema.AdminUnlock || op == schema.AdminReload
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		act := &action{result: "ok"}
		id, ok := s.identify(r)
		if !ok {
			act.result = "unauthorized"
			writeJSON(w, http.StatusUnauthorized, Result{GatewayID: s.gatewayID, Error: "missing or unknown admin token"})
		} else {
			act.identity = id
			h(w, r, act)
		}
		if mutating || !ok {
			s.record(r, op, act)
		}
	}
}

func (s *AdminServer) record(r *http.Request, op string, act *action) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	who := act.identity
	if who == "" {
		who = "unauthenticated"
	}
	a := recorder.AdminAction{Identity: who, Operation: op, Target: act.target, Reason: act.reason,
		Result: act.result, ClientAddr: host, Ended: act.ended}
	if err := s.rec.AdminAction(r.Context(), a); err != nil {
		s.log.Error("recording an admin action failed", "operation", op, "identity", who, "error", err)
	}
	s.log.Info("admin action", "operation", op, "identity", who, "target", act.target, "result", act.result, "sessions_ended", act.ended)
}

func (s *AdminServer) info(w http.ResponseWriter, _ *http.Request, _ *action) {
	writeJSON(w, http.StatusOK, InfoResponse{GatewayID: s.gatewayID})
}

func (s *AdminServer) sessions(w http.ResponseWriter, _ *http.Request, _ *action) {
	var out []SessionInfo
	for _, l := range s.ctl.Sessions() {
		out = append(out, SessionInfo{ID: l.ID, User: l.User, Account: l.Account, Protocol: l.Protocol, Start: l.Start})
	}
	if out == nil {
		out = []SessionInfo{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *AdminServer) terminate(w http.ResponseWriter, r *http.Request, act *action) {
	var req TerminateRequest
	if !decode(w, r, &req, act, s.gatewayID) {
		return
	}
	act.target, act.reason = r.PathValue("id"), req.Reason
	if !s.ctl.Terminate(act.target, act.identity, req.Reason) {
		act.result = "not_found"
		writeJSON(w, http.StatusNotFound, Result{GatewayID: s.gatewayID, Error: "no live session " + act.target + " on this gateway"})
		return
	}
	act.ended = 1
	writeJSON(w, http.StatusOK, Result{GatewayID: s.gatewayID, Ended: 1})
}

func (s *AdminServer) listLocks(w http.ResponseWriter, _ *http.Request, _ *action) {
	locks := s.ctl.Locks()
	if locks == nil {
		locks = []Lock{}
	}
	writeJSON(w, http.StatusOK, locks)
}

func (s *AdminServer) lock(w http.ResponseWriter, r *http.Request, act *action) {
	var req LockRequest
	if !decode(w, r, &req, act, s.gatewayID) {
		return
	}
	act.target, act.reason = req.Kind+":"+req.Name, req.Reason
	k := Lock{Kind: req.Kind, Name: req.Name, Reason: req.Reason, By: act.identity}
	if req.For != "" {
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 {
			s.reject(w, act, http.StatusBadRequest, fmt.Sprintf("for: %q is not a positive duration such as 1h", req.For))
			return
		}
		k.Expires = time.Now().Add(d)
	}
	ended, err := s.ctl.Lock(k)
	if err != nil {
		s.reject(w, act, http.StatusBadRequest, err.Error())
		return
	}
	act.ended = ended
	writeJSON(w, http.StatusOK, Result{GatewayID: s.gatewayID, Ended: ended})
}

func (s *AdminServer) unlock(w http.ResponseWriter, r *http.Request, act *action) {
	kind, name := r.PathValue("kind"), r.PathValue("name")
	act.target = kind + ":" + name
	found, err := s.ctl.Unlock(kind, name)
	switch {
	case err != nil:
		s.reject(w, act, http.StatusInternalServerError, err.Error())
	case !found:
		act.result = "not_found"
		writeJSON(w, http.StatusNotFound, Result{GatewayID: s.gatewayID, Error: "no lock on " + act.target})
	default:
		writeJSON(w, http.StatusOK, Result{GatewayID: s.gatewayID})
	}
}

func (s *AdminServer) reloadHandler(w http.ResponseWriter, _ *http.Request, act *action) {
	act.target = "config"
	ended, warnings, err := s.reload(act.identity)
	if err != nil {
		s.reject(w, act, http.StatusUnprocessableEntity, err.Error())
		return
	}
	act.ended = ended
	writeJSON(w, http.StatusOK, Result{GatewayID: s.gatewayID, Ended: ended, Warnings: warnings})
}

func (s *AdminServer) reject(w http.ResponseWriter, act *action, status int, msg string) {
	act.result = "rejected: " + msg
	writeJSON(w, status, Result{GatewayID: s.gatewayID, Error: msg})
}

func decode(w http.ResponseWriter, r *http.Request, v any, act *action, gatewayID string) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		act.result = "rejected: malformed request"
		writeJSON(w, http.StatusBadRequest, Result{GatewayID: gatewayID, Error: "malformed JSON body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
