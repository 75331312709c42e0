package setup

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/dashboards/kibana"
)

// fakeKibana answers _import like Kibana 8/9 after checking the request as
// Kibana does: method, path, kbn-xsrf, authorization, multipart "file".
type fakeKibana struct {
	t        *testing.T
	wantPath string
	wantAuth string
	status   int
	reply    string
	gotFile  []byte
}

func (k *fakeKibana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": status, "error": http.StatusText(status), "message": msg})
	}
	switch {
	case r.Method != http.MethodPost:
		fail(404, "method "+r.Method)
	case r.URL.Path != k.wantPath || r.URL.Query().Get("overwrite") != "true":
		fail(404, "path "+r.URL.String())
	case r.Header.Get("kbn-xsrf") == "":
		fail(400, "Request must contain a kbn-xsrf header.")
	case r.Header.Get("Authorization") != k.wantAuth:
		fail(401, "Unauthorized: got "+r.Header.Get("Authorization"))
	default:
		f, hdr, err := r.FormFile("file")
		if err != nil {
			fail(400, "[request body.file]: expected value of type [Stream] "+err.Error())
			return
		}
		defer f.Close()
		if !strings.HasSuffix(hdr.Filename, ".ndjson") {
			fail(400, "Invalid file extension .json")
			return
		}
		k.gotFile, _ = io.ReadAll(f)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(k.status)
		io.WriteString(w, k.reply)
	}
}

func TestInstallKibana(t *testing.T) {
	const success = `{"success":true,"successCount":2,"successResults":[{"type":"index-pattern","id":"pamtrail-events"},{"type":"dashboard","id":"pamtrail-session-detail"}]}`
	const partial = `{"success":false,"successCount":1,"errors":[{"id":"pamtrail-sessions-list","type":"search","title":"Sessions",` +
		`"error":{"type":"missing_references","references":[{"type":"index-pattern","id":"pamtrail-sessions"}]}}]}`
	tests := []struct {
		name      string
		opts      KibanaOptions
		wantPath  string
		wantAuth  string
		status    int
		reply     string
		wantErr   string
		wantProgr string
	}{
		{name: "default space, api key", opts: KibanaOptions{APIKey: "a2V5"}, wantPath: "/api/saved_objects/_import", wantAuth: "ApiKey a2V5",
			status: 200, reply: success, wantProgr: "imported dashboard pamtrail-session-detail"},
		{name: "space, basic auth", opts: KibanaOptions{Space: "security", Username: "elastic", Password: "pw"},
			wantPath: "/s/security/api/saved_objects/_import", wantAuth: "Basic ZWxhc3RpYzpwdw==", status: 200, reply: success},
		{name: "partial import", opts: KibanaOptions{}, wantPath: "/api/saved_objects/_import", status: 200, reply: partial,
			wantErr: `refused 1: search pamtrail-sessions-list ("Sessions"): missing_references index-pattern/pamtrail-sessions`},
		{name: "unauthorized", opts: KibanaOptions{APIKey: "wrong"}, wantPath: "/api/saved_objects/_import", wantAuth: "ApiKey right",
			wantErr: "Kibana answered 401 Unauthorized: Unauthorized: got ApiKey wrong (check the API key"},
		{name: "bad file", opts: KibanaOptions{}, wantPath: "/api/saved_objects/_import", status: 400,
			reply: `{"statusCode":400,"error":"Bad Request","message":"Unexpected token in JSON"}`, wantErr: "400 Bad Request: Unexpected token in JSON"},
		{name: "not kibana", opts: KibanaOptions{}, wantPath: "/api/saved_objects/_import", status: 200, reply: "<html>",
			wantErr: "unreadable body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &fakeKibana{t: t, wantPath: tt.wantPath, wantAuth: tt.wantAuth, status: tt.status, reply: tt.reply}
			srv := httptest.NewServer(k)
			defer srv.Close()
			var progress bytes.Buffer
			opts := tt.opts
			opts.URL, opts.Progress, opts.HTTPClient = srv.URL, &progress, srv.Client()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := InstallKibana(ctx, opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("InstallKibana: %v", err)
				}
				if !bytes.Equal(k.gotFile, kibana.SavedObjects) {
					t.Errorf("Kibana received %d bytes, want the embedded %d-byte NDJSON", len(k.gotFile), len(kibana.SavedObjects))
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("InstallKibana error %v, want %q", err, tt.wantErr)
			}
			if !strings.Contains(progress.String(), tt.wantProgr) {
				t.Errorf("progress %q lacks %q", progress.String(), tt.wantProgr)
			}
			if err != nil && strings.Contains(err.Error(), "pw") && tt.opts.Password == "pw" {
				t.Errorf("error quotes the password: %v", err)
			}
		})
	}
}

func TestKibanaOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    KibanaOptions
		wantErr string
	}{
		{"valid", KibanaOptions{URL: "https://kibana:5601/base", Space: "sec-ops_1", APIKey: "k", CAFile: "ca.pem"}, ""},
		{"no scheme", KibanaOptions{URL: "kibana:5601"}, "url:"},
		{"credentials in url", KibanaOptions{URL: "http://u:secret@kibana:5601"}, "url: must not contain credentials"},
		{"ca with http", KibanaOptions{URL: "http://kibana:5601", CAFile: "ca.pem"}, "only apply to an https:// url"},
		{"bad space", KibanaOptions{URL: "http://kibana:5601", Space: "Sec Ops"}, `space: "Sec Ops" is not a Kibana space id`},
		{"key and user", KibanaOptions{URL: "http://kibana:5601", APIKey: "k", Username: "u"}, "set one of them"},
		{"password without user", KibanaOptions{URL: "http://kibana:5601", Password: "p"}, "username: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("Validate() = %v, want %q without the password", err, tt.wantErr)
			}
		})
	}
}
