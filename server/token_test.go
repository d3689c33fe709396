package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/prometheus/client_golang/prometheus"
)

func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	f := NewTokenFile(path)
	token, rec, err := f.Create("ci", RoleIngest, "acme", "alice", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, TokenPrefix) || len(token) != tokenLen || !strings.Contains(token, rec.ID) {
		t.Errorf("Create = %q (id %s), want at_<id>_<secret> of %d characters", token, rec.ID, tokenLen)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), token[len(TokenPrefix)+tokenIDLen+1:]) {
		t.Errorf("the token file holds the secret: %s", b)
	}
	if !strings.Contains(string(b), hashToken(token)) {
		t.Errorf("the token file lacks the token's hash: %s", b)
	}

	for _, tc := range []struct {
		name, org string
		role      Role
		code      string
	}{
		{"ci", "acme", RoleRead, agenttrail.ECONFLICT},
		{"x", "acme", "owner", agenttrail.EINVALID},
		{"x", "ac me", RoleRead, agenttrail.EINVALID},
		{"x", "", RoleRead, agenttrail.EINVALID},
		{"has space", "acme", RoleRead, agenttrail.EINVALID},
	} {
		if _, _, err := f.Create(tc.name, tc.role, tc.org, "", time.Now()); agenttrail.ErrorCode(err) != tc.code {
			t.Errorf("Create(%q, %q, %q) error = %v, want code %s", tc.name, tc.role, tc.org, err, tc.code)
		}
	}

	if _, err := f.Revoke(rec.ID, "bob", time.Now()); err != nil {
		t.Fatalf("Revoke by id: %v", err)
	}
	if _, err := f.Revoke("ci", "bob", time.Now()); agenttrail.ErrorCode(err) != agenttrail.ENOTFOUND {
		t.Errorf("Revoke of a revoked token = %v, want not found", err)
	}
	// The name is free again; the revoked record stays for the trail.
	if _, _, err := f.Create("ci", RoleIngest, "acme", "alice", time.Now()); err != nil {
		t.Errorf("Create with a revoked token's name: %v", err)
	}
	recs, err := f.List()
	if err != nil || len(recs) != 2 || !recs[0].Revoked() || recs[0].RevokedBy != "bob" || recs[1].Revoked() {
		t.Errorf("List = %+v, %v; want the revoked token and the new one", recs, err)
	}
}

// TestTokenFileConcurrentCreates checks that the lock keeps every change
// when several writers (here goroutines, in life processes) race.
func TestTokenFileConcurrentCreates(t *testing.T) {
	f := NewTokenFile(filepath.Join(t.TempDir(), "tokens.json"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, _, err := f.Create(fmt.Sprintf("t%d", i), RoleRead, "acme", "", time.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if recs, err := f.List(); err != nil || len(recs) != 8 {
		t.Errorf("List after 8 concurrent creates = %d tokens, %v", len(recs), err)
	}
}

func TestServeTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "trail.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	p := ingest.New(store, ingest.Config{Registerer: reg})
	srv := New(Config{Addr: "127.0.0.1:0", Store: store, Ingest: p, Registry: reg,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	stop := serveTest(t, srv)
	defer stop(t.Context())
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL = %s, want https", srv.URL())
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(srv.URL() + "/livez")
	if err != nil {
		t.Fatalf("GET /livez over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Errorf("GET /livez over TLS = %d (TLS %v), want 200 over TLS", resp.StatusCode, resp.TLS != nil)
	}
	// Plain HTTP to the TLS port is refused.
	plain := &http.Transport{}
	defer plain.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: plain, Timeout: 10 * time.Second}).Get("http://" + strings.TrimPrefix(srv.URL(), "https://") + "/livez"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS listener = 200")
		}
	}
}

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agenttrail test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
