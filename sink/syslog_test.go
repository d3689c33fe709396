package sink

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// rsyslog is Debian's rsyslogd receiving on a loopback port and writing
// each message as "MSGID<TAB>STRUCTURED-DATA<TAB>MSG" to out.
type rsyslog struct {
	t    *testing.T
	bin  string
	dir  string
	conf string
	port int
	out  string
	cmd  *exec.Cmd
}

// startRsyslog runs rsyslogd in the foreground with a configuration of its
// own (no system logging), on plain TCP or, with tlsDir, over TLS with the
// certificate there. A missing rsyslogd fails the test: .ci/run installs
// it.
func startRsyslog(t *testing.T, tlsDir string) *rsyslog {
	t.Helper()
	bin := "/usr/sbin/rsyslogd"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("rsyslogd"); err != nil {
			t.Fatalf("rsyslogd not found (.ci/run installs Debian's rsyslog and rsyslog-gnutls): %v", err)
		}
	}
	dir := t.TempDir()
	r := &rsyslog{t: t, bin: bin, dir: dir, conf: filepath.Join(dir, "rsyslog.conf"), out: filepath.Join(dir, "out.log"), port: freePort(t)}
	global := `global(workDirectory="` + dir + `" maxMessageSize="2m")`
	tcp := `module(load="imtcp")`
	if tlsDir != "" {
		global = `global(workDirectory="` + dir + `" maxMessageSize="2m" DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="` + tlsDir + `/ca.pem" DefaultNetstreamDriverCertFile="` + tlsDir + `/cert.pem" DefaultNetstreamDriverKeyFile="` + tlsDir + `/key.pem")`
		tcp = `module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")`
	}
	conf := global + "\n" + tcp + `
template(name="fields" type="string" string="%msgid%\t%structured-data%\t%msg%\n")
ruleset(name="in") { action(type="omfile" file="` + r.out + `" template="fields") }
input(type="imtcp" address="127.0.0.1" port="` + strconv.Itoa(r.port) + `" ruleset="in")
`
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *rsyslog) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	var stderr strings.Builder
	r.cmd.Stderr, r.cmd.Stdout = &stderr, &stderr
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start rsyslogd: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("rsyslogd not listening after 30s: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends rsyslogd the way an operator does (SIGTERM: it writes out
// what it received and exits).
func (r *rsyslog) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
	r.cmd = nil
}

var sdID = regexp.MustCompile(`^\[agenttrail@32473 id="((?:[^"\\]|\\.)*)" seq="(\d+)" org="((?:[^"\\]|\\.)*)"\]$`)

// received returns the seqs rsyslog wrote, in order, checking each line's
// MSGID and structured data against its payload with check.
func (r *rsyslog) received(check func(msgid, id string, seq int64, msg string)) []int64 {
	r.t.Helper()
	f, err := os.Open(r.out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	var seqs []int64
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			r.t.Fatalf("rsyslog wrote %q", sc.Text())
		}
		m := sdID.FindStringSubmatch(parts[1])
		if m == nil {
			r.t.Fatalf("structured data %q", parts[1])
		}
		seq, _ := strconv.ParseInt(m[2], 10, 64)
		if check != nil {
			check(parts[0], m[1], seq, parts[2])
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// waitSeqs waits until rsyslog has written n distinct events.
func (r *rsyslog) waitSeqs(n int) {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		seen := map[int64]bool{}
		for _, s := range r.received(nil) {
			seen[s] = true
		}
		if len(seen) >= n {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("rsyslog has %d distinct events after 2 minutes, want %d", len(seen), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func byID(events []agenttrail.Event) map[string]agenttrail.Event {
	m := map[string]agenttrail.Event{}
	for _, e := range events {
		m[e.ID] = e
	}
	return m
}

// TestSyslogRsyslogTCP: CEF and JSON over TCP into rsyslog; each message
// carries the event's id and source in its header and the event whole in
// its payload.
func TestSyslogRsyslogTCP(t *testing.T) {
	for _, format := range []string{"cef", "json"} {
		t.Run(format, func(t *testing.T) {
			store, events := openStore(t, 700)
			rs := startRsyslog(t, "")
			start(t, store, testConfig(t, Config{Type: TypeSyslog, Format: format, Address: fmt.Sprintf("tcp://127.0.0.1:%d", rs.port), Batch: BatchLimits{MaxEvents: 100}}))
			rs.waitSeqs(len(events))
			want := byID(events)
			seqs := rs.received(func(msgid, id string, seq int64, msg string) {
				e, ok := want[id]
				if !ok || e.Seq != seq || msgid != headerField(e.Source, 32) {
					t.Fatalf("message id %q seq %d msgid %q matches no stored event", id, seq, msgid)
				}
				switch format {
				case "cef":
					if !strings.HasPrefix(msg, "CEF:0|agenttrail|agenttrail|") || !strings.Contains(msg, "externalId="+id) {
						t.Fatalf("CEF payload %q", msg)
					}
				case "json":
					var got agenttrail.Event
					if err := json.Unmarshal([]byte(msg), &got); err != nil || got.ID != id || got.Action != e.Action || got.Seq != seq {
						t.Fatalf("JSON payload %q: %v", msg, err)
					}
				}
			})
			checkSeqs(t, seqs, events, false)
		})
	}
}

// TestSyslogRsyslogTLS: RFC 5425 to rsyslog's gtls driver, the server's
// certificate checked against a CA made here.
func TestSyslogRsyslogTLS(t *testing.T) {
	tlsDir := writeTestCA(t)
	store, events := openStore(t, 300)
	rs := startRsyslog(t, tlsDir)
	start(t, store, testConfig(t, Config{Type: TypeSyslog, Format: "cef", Address: fmt.Sprintf("tls://localhost:%d", rs.port), CAFile: filepath.Join(tlsDir, "ca.pem")}))
	rs.waitSeqs(len(events))
	checkSeqs(t, rs.received(nil), events, false)

	// A sink that does not trust the CA delivers nothing, and says why.
	store2, _ := openStore(t, 10)
	set := start(t, store2, testConfig(t, Config{Name: "untrusted", Type: TypeSyslog, Address: fmt.Sprintf("tls://localhost:%d", rs.port)}))
	deadline := time.Now().Add(time.Minute)
	for {
		st, _ := set.Status(t.Context())
		if strings.Contains(st[0].LastError, "certificate") {
			if st[0].Delivered != 0 {
				t.Fatalf("untrusted receiver got %d events", st[0].Delivered)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status with an untrusted certificate = %+v", st[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeTestCA writes ca.pem, and cert.pem and key.pem of "localhost"
// signed by it, into a new directory.
func writeTestCA(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agenttrail test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	for name, block := range map[string]*pem.Block{
		"ca.pem":   {Type: "CERTIFICATE", Bytes: caDER},
		"cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"key.pem":  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
