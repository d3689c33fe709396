package kube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"time"
)

// TokenPlaceholder stands in for the agent's proxy credential in a
// kubeconfig written without one.
const TokenPlaceholder = "REPLACE-WITH-YOUR-AGENTTRAIL-PROXY-TOKEN"

// Kubeconfig is what WriteKubeconfig needs to point kubectl and client-go at
// the proxy.
type Kubeconfig struct {
	// Server is the proxy's URL. It must be https for kubectl and client-go
	// to send the token: they send no credentials over plain HTTP.
	Server string
	// Cluster names the cluster, user and context.
	Cluster string
	// Token is the agent's proxy credential; empty writes TokenPlaceholder.
	Token string
	// CAPEM is the PEM certificate the proxy's serving certificate is
	// checked against; empty trusts the system roots.
	CAPEM []byte
}

// WriteKubeconfig writes k as a kubeconfig.
func WriteKubeconfig(w io.Writer, k Kubeconfig) error {
	token := k.Token
	if token == "" {
		token = TokenPlaceholder
	}
	ca := ""
	if len(k.CAPEM) > 0 {
		ca = "\n    certificate-authority-data: " + base64.StdEncoding.EncodeToString(k.CAPEM)
	}
	// Every value is quoted: YAML's JSON-compatible strings need no library.
	q := strconv.Quote
	_, err := fmt.Fprintf(w, `apiVersion: v1
kind: Config
clusters:
- name: %[2]s
  cluster:
    server: %[1]s%[4]s
users:
- name: %[2]s
  user:
    token: %[3]s
contexts:
- name: %[2]s
  context:
    cluster: %[2]s
    user: %[2]s
current-context: %[2]s
`, q(k.Server), q(k.Cluster), q(token), ca)
	if err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// SelfSignedCert makes a serving certificate for hosts (names or IP
// addresses), valid for a year from now, and returns it with its PEM form
// for a kubeconfig's certificate-authority-data. It suits a proxy that only
// its own agents reach, whose kubeconfig it writes itself.
func SelfSignedCert(hosts []string, now time.Time) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "agenttrail kube proxy"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	return cert, certPEM, nil
}
