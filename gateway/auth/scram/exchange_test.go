package scram

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// RFC 7677 section 3 test vector.
const (
	rfcPassword    = "pencil"
	rfcClientNonce = "rOprNGfwEbeRWgbNEkqO"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func TestClientExchangeRFC7677Vector(t *testing.T) {
	c := &ClientExchange{password: rfcPassword, clientNonce: rfcClientNonce, clientFirstBare: "n=user,r=" + rfcClientNonce}
	final, err := c.Final([]byte(rfcServerFirst))
	if err != nil {
		t.Fatal(err)
	}
	if string(final) != rfcClientFinal {
		t.Fatalf("client-final = %q, want %q", final, rfcClientFinal)
	}
	if err := c.Verify([]byte(rfcServerFinal)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := c.Verify([]byte("v=AAAA" + rfcServerFinal[6:])); err == nil {
		t.Fatal("Verify accepted a wrong server signature")
	}
	if err := c.Verify([]byte("e=invalid-proof")); err == nil || !strings.Contains(err.Error(), "invalid-proof") {
		t.Fatalf("Verify(e=...) = %v, want the server's error", err)
	}
}

func TestServerExchangeRFC7677Vector(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	salted, err := SaltedPassword(rfcPassword, salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	v := verifierFromSalted(salted, salt, 4096)
	s := NewServerExchange(v, nil)
	if _, err := s.First(MechanismSHA256, []byte("n,,n=user,r="+rfcClientNonce)); err != nil {
		t.Fatal(err)
	}
	// Replace the random server nonce by the RFC's to replay its messages.
	s.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	s.serverFirst = rfcServerFirst
	final, err := s.Final([]byte(rfcClientFinal))
	if err != nil {
		t.Fatal(err)
	}
	if string(final) != rfcServerFinal {
		t.Fatalf("server-final = %q, want %q", final, rfcServerFinal)
	}
}

func verifierFromSalted(salted, salt []byte, iter int) Verifier {
	clientKey := HMAC(salted, []byte("Client Key"))
	stored := sha256Sum(clientKey)
	return Verifier{Iterations: iter, Salt: salt, StoredKey: stored, ServerKey: HMAC(salted, []byte("Server Key"))}
}

func TestRoundTrip(t *testing.T) {
	v, err := NewVerifier("correct horse", 4096)
	if err != nil {
		t.Fatal(err)
	}
	cbind := []byte("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name      string
		password  string
		cbindData []byte
		mechanism string
		wantErr   error
	}{
		{name: "right password", password: "correct horse", mechanism: MechanismSHA256},
		{name: "right password over TLS without binding", password: "correct horse", cbindData: cbind, mechanism: MechanismSHA256},
		{name: "wrong password", password: "battery staple", mechanism: MechanismSHA256, wantErr: ErrAuthFailed},
		{name: "empty password", password: "", mechanism: MechanismSHA256, wantErr: ErrAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServerExchange(v, tt.cbindData)
			c, err := NewClientExchange(tt.password)
			if err != nil {
				t.Fatal(err)
			}
			serverFirst, err := s.First(tt.mechanism, c.First())
			if err != nil {
				t.Fatal(err)
			}
			clientFinal, err := c.Final(serverFirst)
			if err != nil {
				t.Fatal(err)
			}
			serverFinal, err := s.Final(clientFinal)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Final error = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if err := c.Verify(serverFinal); err != nil {
					t.Fatalf("client rejected the server: %v", err)
				}
			}
		})
	}
}

// plusClientFinal builds a client-final-message with channel binding, which
// the gateway's own client never sends but psql does.
func plusClientFinal(t *testing.T, password string, cbind []byte, serverFirst []byte, clientFirstBare string) []byte {
	t.Helper()
	c := &ClientExchange{password: password, clientFirstBare: clientFirstBare}
	c.clientNonce = strings.TrimPrefix(clientFirstBare, "n=,r=")
	final, err := c.Final(serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	// Recompute with the binding attribute in place of "biws".
	header := "p=" + ChannelBindingType + ",,"
	cAttr := base64.StdEncoding.EncodeToString(append([]byte(header), cbind...))
	withoutProof := "c=" + cAttr + ",r=" + strings.TrimPrefix(strings.Split(string(final), ",")[1], "r=")
	authMessage := clientFirstBare + "," + string(serverFirst) + "," + withoutProof
	clientKey := HMAC(c.saltedPassword, []byte("Client Key"))
	sig := HMAC(sha256Sum(clientKey), []byte(authMessage))
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof))
}

func TestChannelBinding(t *testing.T) {
	v, err := NewVerifier("pw", 4096)
	if err != nil {
		t.Fatal(err)
	}
	cbind := []byte("server-cert-hash-server-cert-has")
	bare := "n=,r=clientnonce123"
	tests := []struct {
		name       string
		serverBind []byte
		clientBind []byte
		wantErr    bool
	}{
		{name: "matching binding", serverBind: cbind, clientBind: cbind},
		{name: "different certificate (MITM)", serverBind: cbind, clientBind: []byte("another-cert-hash-another-cert-h"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServerExchange(v, tt.serverBind)
			if got := s.Mechanisms(); got[0] != MechanismSHA256Plus {
				t.Fatalf("Mechanisms() = %v, want -PLUS first", got)
			}
			serverFirst, err := s.First(MechanismSHA256Plus, []byte("p="+ChannelBindingType+",,"+bare))
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Final(plusClientFinal(t, "pw", tt.clientBind, serverFirst, bare))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Final error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestServerExchangeRejectsBadInput(t *testing.T) {
	v, err := NewVerifier("pw", 4096)
	if err != nil {
		t.Fatal(err)
	}
	cbind := []byte("cbind")
	tests := []struct {
		name      string
		cbindData []byte
		mechanism string
		first     string
		wantInErr string
	}{
		{name: "unknown mechanism", mechanism: "SCRAM-SHA-1", first: "n,,n=,r=abc", wantInErr: "not offered"},
		{name: "plus without TLS", mechanism: MechanismSHA256Plus, first: "p=tls-server-end-point,,n=,r=abc", wantInErr: "not offered"},
		{name: "downgrade: y while plus offered", cbindData: cbind, mechanism: MechanismSHA256, first: "y,,n=,r=abc", wantInErr: "downgrade"},
		{name: "binding without plus", mechanism: MechanismSHA256, first: "p=tls-server-end-point,,n=,r=abc", wantInErr: "without SCRAM-SHA-256-PLUS"},
		{name: "plus without binding", cbindData: cbind, mechanism: MechanismSHA256Plus, first: "n,,n=,r=abc", wantInErr: "requires channel binding"},
		{name: "authzid", mechanism: MechanismSHA256, first: "n,a=admin,n=,r=abc", wantInErr: "authorization identity"},
		{name: "no nonce", mechanism: MechanismSHA256, first: "n,,n=", wantInErr: "malformed"},
		{name: "empty nonce", mechanism: MechanismSHA256, first: "n,,n=,r=", wantInErr: "empty client nonce"},
		{name: "nonce with control char", mechanism: MechanismSHA256, first: "n,,n=,r=a\x01b", wantInErr: "invalid characters"},
		{name: "mandatory extension", mechanism: MechanismSHA256, first: "n,,m=ext,n=,r=abc", wantInErr: "mandatory extensions"},
		{name: "garbage", mechanism: MechanismSHA256, first: "garbage", wantInErr: "malformed"},
		{name: "too long", mechanism: MechanismSHA256, first: "n,,n=,r=" + strings.Repeat("a", 5000), wantInErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServerExchange(v, tt.cbindData)
			_, err := s.First(tt.mechanism, []byte(tt.first))
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("First error = %v, want it to contain %q", err, tt.wantInErr)
			}
		})
	}

	finals := []struct {
		name      string
		final     string
		wantInErr string
	}{
		{name: "no proof", final: "c=biws,r=NONCE", wantInErr: "no proof"},
		{name: "wrong nonce", final: "c=biws,r=other,p=" + strings.Repeat("A", 44), wantInErr: "nonce"},
		{name: "binding mismatch", final: "c=eSws,r=NONCE,p=" + strings.Repeat("A", 44), wantInErr: "channel binding"},
		{name: "bad base64 binding", final: "c=!!,r=NONCE,p=" + strings.Repeat("A", 44), wantInErr: "base64"},
		{name: "short proof", final: "c=biws,r=NONCE,p=AAAA", wantInErr: "malformed client proof"},
		{name: "attributes out of order", final: "r=NONCE,c=biws,p=AAAA", wantInErr: "malformed"},
	}
	for _, tt := range finals {
		t.Run("final/"+tt.name, func(t *testing.T) {
			s := NewServerExchange(v, nil)
			sf, err := s.First(MechanismSHA256, []byte("n,,n=,r=abc"))
			if err != nil {
				t.Fatal(err)
			}
			nonce := strings.TrimPrefix(strings.Split(string(sf), ",")[0], "r=")
			_, err = s.Final([]byte(strings.ReplaceAll(tt.final, "NONCE", nonce)))
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("Final error = %v, want it to contain %q", err, tt.wantInErr)
			}
			if _, err := s.Final([]byte(tt.final)); err == nil {
				t.Fatal("a second Final was accepted")
			}
		})
	}
}

func TestMockVerifierIsStableAndUnmatchable(t *testing.T) {
	secret := []byte("process secret")
	a, b := MockVerifier(secret, "mallory"), MockVerifier(secret, "mallory")
	if a.String() != b.String() {
		t.Fatal("mock verifier differs between attempts: an attacker could detect unknown users")
	}
	if MockVerifier(secret, "eve").String() == a.String() {
		t.Fatal("mock verifiers of different users are identical")
	}
	for _, pw := range []string{"", "mallory", "password"} {
		s := NewServerExchange(a, nil)
		c, _ := NewClientExchange(pw)
		sf, err := s.First(MechanismSHA256, c.First())
		if err != nil {
			t.Fatal(err)
		}
		cf, err := c.Final(sf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Final(cf); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("password %q: Final = %v, want ErrAuthFailed", pw, err)
		}
	}
}

func TestClientExchangeRejectsBadServerFirst(t *testing.T) {
	tests := []struct {
		name        string
		serverFirst string
	}{
		{name: "nonce not extended", serverFirst: "r=zzz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"},
		{name: "nonce not longer", serverFirst: "r=NONCE,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"},
		{name: "bad salt", serverFirst: "r=NONCEx,s=***,i=4096"},
		{name: "zero iterations", serverFirst: "r=NONCEx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0"},
		{name: "huge iterations", serverFirst: "r=NONCEx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999"},
		{name: "no equals", serverFirst: "garbage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClientExchange("pw")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Final([]byte(strings.ReplaceAll(tt.serverFirst, "NONCE", c.clientNonce))); err == nil {
				t.Fatal("Final accepted a bad server-first-message")
			}
		})
	}
}

func FuzzServerExchange(f *testing.F) {
	f.Add("n,,n=,r=rOprNGfwEbeRWgbNEkqO", "c=biws,r=NONCE,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", false)
	f.Add("p=tls-server-end-point,,n=,r=abc", "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=NONCE,p=AAAA", true)
	f.Add("y,,n=*,r=x", "c=eSws,r=NONCE,p=", false)
	v, err := NewVerifier("pw", 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, final string, plus bool) {
		var cbind []byte
		mech := MechanismSHA256
		if plus {
			cbind, mech = []byte("cbind"), MechanismSHA256Plus
		}
		s := NewServerExchange(v, cbind)
		sf, err := s.First(mech, []byte(first))
		if err != nil {
			return
		}
		nonce := strings.TrimPrefix(strings.Split(string(sf), ",")[0], "r=")
		if _, err := s.Final([]byte(strings.ReplaceAll(final, "NONCE", nonce))); err == nil {
			t.Fatalf("fuzzed client-final-message %q authenticated without the password", final)
		}
	})
}
