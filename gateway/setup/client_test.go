package setup

import (
	"strings"
	"testing"
)

func TestClientConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ClientConfig
		wantErr string // "" means valid
	}{
		{name: "plain http", cfg: ClientConfig{URL: "http://127.0.0.1:9200"}},
		{name: "https with CA and basic auth", cfg: ClientConfig{URL: "https://es:9200", CAFile: "ca.pem", Username: "u", Password: "p"}},
		{name: "no scheme", cfg: ClientConfig{URL: "127.0.0.1:9200"}, wantErr: "url:"},
		{name: "empty", cfg: ClientConfig{}, wantErr: "url:"},
		{name: "ftp", cfg: ClientConfig{URL: "ftp://es"}, wantErr: "url:"},
		{name: "credentials in url", cfg: ClientConfig{URL: "http://u:secret@es:9200"}, wantErr: "url: must not contain credentials"},
		{name: "credentials in a bad url", cfg: ClientConfig{URL: "ftp://u:secret@es"}, wantErr: "url: must not contain credentials"},
		{name: "ca with http", cfg: ClientConfig{URL: "http://es:9200", CAFile: "ca.pem"}, wantErr: "only apply to an https:// url"},
		{name: "insecure with http", cfg: ClientConfig{URL: "http://es:9200", InsecureSkipVerify: true}, wantErr: "only apply to an https:// url"},
		{name: "password without user", cfg: ClientConfig{URL: "http://es:9200", Password: "p"}, wantErr: "username: required"},
		{name: "a cluster with an API key", cfg: ClientConfig{URL: "https://es-1:9200,https://es-2:9200", CAFile: "ca.pem", APIKey: "aWQ6a2V5"}},
		{name: "one bad node", cfg: ClientConfig{URL: "https://es-1:9200,es-2:9200"}, wantErr: "url:"},
		{name: "api key and user", cfg: ClientConfig{URL: "http://es:9200", APIKey: "k", Username: "u"}, wantErr: "api key: use either"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %q leaks the password from the URL", err)
			}
		})
	}
}

func TestNewElasticsearchClientMissingCA(t *testing.T) {
	_, err := NewElasticsearchClient(ClientConfig{URL: "https://es:9200", CAFile: t.TempDir() + "/missing.pem"})
	if err == nil || !strings.HasPrefix(err.Error(), "ca: ") {
		t.Fatalf("NewElasticsearchClient with a missing CA file = %v, want an error naming ca", err)
	}
}
