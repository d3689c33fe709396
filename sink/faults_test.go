package sink

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/sqlite"
	"github.com/agenttrail/agenttrail/storetest"
)

// The fault harness: every sink type, against its real receiver or its
// stand-in, goes through the same faults (the receiver down during
// sustained ingest, the delivering process killed with SIGKILL, one event
// refused for good), checked the same way.

// faultReceiver is one sink type's receiver as the fault tests drive it.
type faultReceiver struct {
	// cfg reaches the receiver (Name and retries are the harness's).
	cfg Config
	// setDown takes the receiver down or brings it back; nil when the
	// type has no receiver to lose (file: its reader being away changes
	// nothing for the sink).
	setDown func(down bool)
	// got returns the seqs of the events the receiver holds, in the order
	// it first took them, and how many it took again (duplicates).
	got func(t *testing.T, all []agenttrail.Event) (seqs []int64, dups int)
	// refuse makes the receiver refuse the event with this id for good;
	// nil when the protocol has no way to refuse one event.
	refuse func(id string)
	// dedups: the receiver keeps an event once, by its id (Idempotency-Key
	// and event id, HEC's event id, Elasticsearch's _id, the same S3 key).
	dedups bool
	// resends: after a broken connection the sink sends again what the
	// connection may have lost (syslog has no acknowledgement).
	resends bool
	// killBatch is max_events for the kill test: small enough that the
	// kill comes mid-delivery, large enough that a slow protocol (HEC
	// acknowledgement polling) finishes in reasonable time.
	killBatch int
}

type faultCase struct {
	name  string
	start func(t *testing.T) *faultReceiver
}

// faultCases is every sink type, syslog over TCP and over TLS.
var faultCases = []faultCase{
	{"file", func(t *testing.T) *faultReceiver {
		path := filepath.Join(t.TempDir(), "trail.ndjson")
		return &faultReceiver{cfg: Config{Type: TypeFile, Path: path},
			got: func(t *testing.T, _ []agenttrail.Event) ([]int64, int) {
				return firstSeen(seqsOfNDJSON(t, readLinesIfAny(t, path)))
			}}
	}},
	{"webhook", func(t *testing.T) *faultReceiver {
		secretFile := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rc, srv := newWebhookReceiver(t, "s3cret")
		rc.mu.Lock()
		rc.sink = "test"
		rc.mu.Unlock()
		return &faultReceiver{cfg: Config{Name: "hook", Type: TypeWebhook, URL: srv.URL, SecretFile: secretFile}, dedups: true,
			setDown: func(down bool) { rc.mu.Lock(); rc.down = down; rc.mu.Unlock() },
			got:     func(*testing.T, []agenttrail.Event) ([]int64, int) { return rc.got() },
			refuse:  func(id string) { rc.mu.Lock(); rc.refuse = id; rc.mu.Unlock() }}
	}},
	{"syslog-tcp", func(t *testing.T) *faultReceiver { return rsyslogFault(t, false) }},
	{"syslog-tls", func(t *testing.T) *faultReceiver { return rsyslogFault(t, true) }},
	{"splunk_hec", func(t *testing.T) *faultReceiver {
		const token = "00000000-1111-2222-3333-444444444444"
		tok := filepath.Join(t.TempDir(), "hec.token")
		if err := os.WriteFile(tok, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h, srv := newHECStandIn(t, token, true)
		return &faultReceiver{cfg: Config{Type: TypeSplunkHEC, URL: srv.URL, TokenFile: tok, Ack: true, Format: "ocsf"}, dedups: true, killBatch: 200,
			setDown: func(down bool) { h.mu.Lock(); h.busy = down; h.mu.Unlock() },
			got: func(t *testing.T, all []agenttrail.Event) ([]int64, int) {
				h.mu.Lock()
				dups := 0
				for _, n := range h.seen {
					dups += n - 1
				}
				h.mu.Unlock()
				return seqsOfIDs(t, h.indexed(), all), dups
			},
			refuse: func(id string) { h.mu.Lock(); h.poison = id; h.mu.Unlock() }}
	}},
	{"elasticsearch", func(t *testing.T) *faultReceiver {
		es, srv := newESStandIn(t)
		return &faultReceiver{cfg: Config{Type: TypeElasticsearch, URL: srv.URL, Index: "audit"}, dedups: true,
			setDown: func(down bool) { es.mu.Lock(); es.down = down; es.mu.Unlock() },
			got: func(t *testing.T, all []agenttrail.Event) ([]int64, int) {
				es.mu.Lock()
				ids, dups := append([]string(nil), es.order...), es.conflict
				es.mu.Unlock()
				return seqsOfIDs(t, ids, all), dups
			},
			refuse: func(id string) { es.mu.Lock(); es.poison = id; es.mu.Unlock() }}
	}},
	{"otlp", func(t *testing.T) *faultReceiver {
		col := startCollector(t)
		return &faultReceiver{cfg: Config{Type: TypeOTLP, URL: col.url},
			setDown: func(down bool) { col.mu.Lock(); col.down = down; col.mu.Unlock() },
			got: func(t *testing.T, all []agenttrail.Event) ([]int64, int) {
				return firstSeen(col.seqs(t, byID(all)))
			},
			refuse: func(id string) { col.mu.Lock(); col.poison = id; col.mu.Unlock() }}
	}},
	{"s3", func(t *testing.T) *faultReceiver {
		b := newS3Bucket(t)
		return &faultReceiver{cfg: Config{Type: TypeS3, URL: b.srv.URL, Bucket: "trail", Prefix: "audit/"}, dedups: true, killBatch: 100,
			setDown: func(down bool) { b.mu.Lock(); b.down = down; b.mu.Unlock() },
			got:     b.got}
	}},
}

func rsyslogFault(t *testing.T, overTLS bool) *faultReceiver {
	tlsDir, addr := "", "tcp://127.0.0.1:%d"
	if overTLS {
		tlsDir, addr = writeTestCA(t), "tls://localhost:%d"
	}
	rs := startRsyslog(t, tlsDir)
	c := Config{Type: TypeSyslog, Format: "cef", Address: fmt.Sprintf(addr, rs.port)}
	if overTLS {
		c.Format, c.CAFile = "json", filepath.Join(tlsDir, "ca.pem")
	}
	return &faultReceiver{cfg: c, resends: true,
		setDown: func(down bool) {
			if down {
				rs.stop()
			} else {
				rs.start()
			}
		},
		got: func(*testing.T, []agenttrail.Event) ([]int64, int) { return firstSeen(rs.received(nil)) }}
}

// firstSeen splits what a receiver without deduplication took into the
// seqs in the order first taken and the number taken again.
func firstSeen(all []int64) ([]int64, int) {
	seen := make(map[int64]bool, len(all))
	var out []int64
	for _, s := range all {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, len(all) - len(out)
}

func readLinesIfAny(t *testing.T, path string) []string {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	return readLines(t, path)
}

// TestMain gives the AWS SDK's default chain fixed credentials and no
// shared files, for the S3 sink and its test client (the test server takes
// any), once for every test, so the fault tests may run in parallel.
func TestMain(m *testing.M) {
	os.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	os.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	os.Exit(m.Run())
}

// s3Bucket is gofakes3 holding the bucket "trail"; while down, every
// request is answered 503 SlowDown, as S3 does when it sheds load.
type s3Bucket struct {
	srv *httptest.Server

	mu   sync.Mutex
	down bool
}

func newS3Bucket(t *testing.T) *s3Bucket {
	backend := s3mem.New()
	if err := backend.CreateBucket("trail"); err != nil {
		t.Fatal(err)
	}
	b := &s3Bucket{}
	fake := gofakes3.New(backend).Server()
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		down := b.down
		b.mu.Unlock()
		if down {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// got reads every object of the bucket. Objects are one org's events of
// one batch, named by their first and last seq: each must hold its
// events in seq order; together they are returned in seq order (S3 lists
// by name), with the events found in more than one object counted as
// duplicates.
func (b *s3Bucket) got(t *testing.T, _ []agenttrail.Event) ([]int64, int) {
	t.Helper()
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(b.srv.URL); o.UsePathStyle = true })
	var all []int64
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String("trail"), Prefix: aws.String("audit/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			obj, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("trail"), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(obj.Body)
			if err != nil {
				t.Fatalf("%s: %v", *o.Key, err)
			}
			sc := bufio.NewScanner(zr)
			sc.Buffer(nil, 4<<20)
			var seqs []int64
			for sc.Scan() {
				var e agenttrail.Event
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("%s: %v", *o.Key, err)
				}
				seqs = append(seqs, e.Seq)
			}
			obj.Body.Close()
			name := strings.TrimSuffix(filepath.Base(*o.Key), ".ndjson.gz")
			parts := strings.Split(name, "-")
			first, _ := strconv.ParseInt(parts[len(parts)-2], 10, 64)
			last, _ := strconv.ParseInt(parts[len(parts)-1], 10, 64)
			if len(seqs) == 0 || seqs[0] != first || seqs[len(seqs)-1] != last || !sort.SliceIsSorted(seqs, func(i, j int) bool { return seqs[i] < seqs[j] }) {
				t.Fatalf("object %s holds seqs %v…, want %d to %d in order", *o.Key, seqs[:min(5, len(seqs))], first, last)
			}
			all = append(all, seqs...)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return firstSeen(all)
}

// faultConfig is the sink config of a fault test: the receiver's, named
// "test", with fast retries up to maxRetry.
func faultConfig(t *testing.T, rc *faultReceiver, maxEvents int, maxRetry time.Duration) Config {
	t.Helper()
	c := rc.cfg
	c.Name = "test"
	c.Batch.MaxEvents = maxEvents
	c = testConfig(t, c)
	c.Retry.Max = Duration(maxRetry)
	return c
}

// outageLength is how long TestFaultReceiverDown holds each receiver down:
// 30s, or AGENTTRAIL_SINK_OUTAGE (a Go duration) for a quicker run.
func outageLength(t *testing.T) time.Duration {
	v := os.Getenv("AGENTTRAIL_SINK_OUTAGE")
	if v == "" {
		return 30 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("AGENTTRAIL_SINK_OUTAGE=%q: want a duration such as 30s", v)
	}
	return d
}

// TestFaultReceiverDown: for every sink type, the receiver is down for 30
// seconds (AGENTTRAIL_SINK_OUTAGE) while 250 events a second are ingested;
// afterwards it holds every event, first taken in seq order, none missing,
// none twice (but syslog's resend after a reconnect, which carries the
// event id to drop them by). The types run in parallel: the whole test
// takes about one outage.
func TestFaultReceiverDown(t *testing.T) {
	t.Parallel()
	outage := outageLength(t)
	eachFault(t, func(t *testing.T, fc faultCase) {
		rc := fc.start(t)
		store, _ := openStore(t, 0)
		set := start(t, store, faultConfig(t, rc, DefaultMaxEvents, 2*time.Second))
		var downAt, upAt time.Time
		all := ingestThroughTimedOutage(t, store, outage, func(down bool) {
			if !down {
				upAt = time.Now()
			}
			if rc.setDown != nil {
				rc.setDown(down)
			}
			if down {
				downAt = time.Now()
			}
		})
		if upAt.Sub(downAt) < outage {
			t.Fatalf("the receiver was down %v, want at least %v", upAt.Sub(downAt), outage)
		}
		waitCaughtUp(t, set, "test")
		seqs, dups := rc.got(t, all)
		checkSeqs(t, seqs, all, false)
		if dups > 0 && !rc.resends {
			t.Errorf("the receiver took %d events twice", dups)
		}
		st, _ := set.Status(t.Context())
		if rc.setDown != nil && (st[0].Retried == 0 || st[0].LastError == "") {
			t.Errorf("status after an outage = %+v; want retries and the last error", st[0])
		}
		if st[0].Delivered < int64(len(all)) {
			t.Errorf("status delivered = %d, want %d", st[0].Delivered, len(all))
		}
		t.Logf("down %v during ingest of %d events; duplicates taken again: %d", upAt.Sub(downAt).Round(time.Millisecond), len(all), dups)
	})
}

// ingestThroughTimedOutage appends 50 events every 200 ms (250 a second,
// fewer when the store is slower) while the receiver is up for a second,
// down (setDown) for outage, and up again for a second. It returns the
// events stored, and fails unless some were committed while the receiver
// was down.
func ingestThroughTimedOutage(t *testing.T, store *sqlite.Store, outage time.Duration, setDown func(bool)) []agenttrail.Event {
	t.Helper()
	const pace, per = 200 * time.Millisecond, 50
	gen := storetest.Events(21, per*int((outage+10*time.Second)/pace), storetest.Base(), time.Hour)
	var (
		all   []agenttrail.Event
		while int // events committed while the receiver was down
		err   error
		down  atomic.Bool
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i+per <= len(gen); i += per {
			select {
			case <-stop:
				return
			default:
			}
			var res agenttrail.AppendResult
			if res, err = store.Append(context.Background(), gen[i:i+per]); err == nil && res.Inserted != per {
				err = fmt.Errorf("append of %d events: %+v", per, res)
			}
			if err != nil {
				return
			}
			if down.Load() {
				while += res.Inserted
			}
			all = append(all, gen[i:i+per]...)
			time.Sleep(pace)
		}
	}()
	time.Sleep(time.Second)
	setDown(true)
	down.Store(true)
	time.Sleep(outage)
	down.Store(false)
	setDown(false)
	time.Sleep(time.Second)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if while == 0 {
		t.Fatalf("no event was stored while the receiver was down")
	}
	return all
}

// killChildEnv carries the kill test's child its store and sink.
const killChildEnv = "AGENTTRAIL_SINK_KILL_CHILD"

type killChild struct {
	Path   string
	Config Config
}

// TestFaultKilledMidDelivery: for every sink type, the process delivering
// (a child running the sink as serve does) is killed with SIGKILL once it
// has saved a checkpoint and before it delivered everything; a new run on
// the same store resumes from that checkpoint. The receiver ends with
// every event, first taken in seq order, and after the restart took no more
// than the events after the checkpoint (so it did not start over).
func TestFaultKilledMidDelivery(t *testing.T) {
	if spec := os.Getenv(killChildEnv); spec != "" {
		runKillChild(spec)
		return
	}
	t.Parallel()
	const n = 2000
	eachFault(t, func(t *testing.T, fc faultCase) {
		rc := fc.start(t)
		path := filepath.Join(t.TempDir(), "at.db")
		store, err := sqlite.Open(t.Context(), path, sqlite.Config{})
		if err != nil {
			t.Fatal(err)
		}
		events := storetest.AppendAll(t, store, storetest.Events(31, n, storetest.Base(), time.Hour), 1000)
		store.Close()
		batch := rc.killBatch
		if batch == 0 {
			batch = 10
		}
		c := faultConfig(t, rc, batch, 200*time.Millisecond)
		var spec strings.Builder
		enc := base64.NewEncoder(base64.StdEncoding, &spec)
		if err := gob.NewEncoder(enc).Encode(killChild{Path: path, Config: c}); err != nil {
			t.Fatal(err)
		}
		enc.Close()
		cmd := exec.Command(os.Args[0], "-test.run=^TestFaultKilledMidDelivery$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+spec.String())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A child that says nothing in a minute is killed all the same.
		timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
		line, _ := bufio.NewReader(out).ReadString('\n')
		timer.Stop()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if !strings.HasPrefix(line, "checkpoint ") {
			t.Fatalf("child said %q\n%s", line, stderr.String())
		}
		// What the receiver took before the kill (rsyslog writes its
		// file a little later: wait until it stops growing).
		var atKill []int64
		var dupsAtKill int
		for prev := -1; ; time.Sleep(300 * time.Millisecond) {
			atKill, dupsAtKill = rc.got(t, events)
			if len(atKill)+dupsAtKill == prev {
				break
			}
			prev = len(atKill) + dupsAtKill
		}
		if len(atKill) >= n {
			t.Fatalf("the child delivered all %d events before the kill: nothing to resume", n)
		}

		store, err = sqlite.Open(t.Context(), path, sqlite.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		cp, err := store.Checkpoint(t.Context(), "test")
		if err != nil || cp == 0 {
			t.Fatalf("checkpoint after the kill = %d, %v; the child said %q", cp, err, line)
		}
		if len(atKill) == 0 || cp > atKill[len(atKill)-1] {
			t.Fatalf("checkpoint %d is past what the receiver took before the kill (%d events)", cp, len(atKill))
		}
		after := 0
		for _, e := range events {
			if e.Seq > cp {
				after++
			}
		}
		set := start(t, store, c)
		waitCaughtUp(t, set, "test")
		seqs, dups := rc.got(t, events)
		checkSeqs(t, seqs, events, true)
		if again := len(seqs) + dups - len(atKill) - dupsAtKill; again > after {
			t.Errorf("after the restart the receiver took %d events, more than the %d after the checkpoint %d", again, after, cp)
		}
		t.Logf("killed with %d of %d events taken, checkpoint %d; taken again after the restart: %d (dropped by id: %v)", len(atKill), n, cp, len(seqs)+dups-n, rc.dedups)
	})
}

// runKillChild delivers the sink of spec from its store and prints the
// first checkpoint it saved, then goes on until it is killed.
func runKillChild(spec string) {
	var k killChild
	if err := gob.NewDecoder(base64.NewDecoder(base64.StdEncoding, strings.NewReader(spec))).Decode(&k); err != nil {
		fmt.Println("error", err)
		return
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, k.Path, sqlite.Config{})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	set, err := New([]Config{k.Config}, store, nil, nil)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	go set.Runners()[0].Run(ctx)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if cp, err := store.Checkpoint(ctx, k.Config.Name); err == nil && cp > 0 {
			fmt.Printf("checkpoint %d\n", cp)
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(2 * time.Minute) // killed here
}

// TestFaultRefusesOne: for every sink type whose receiver can refuse one
// event, it refuses one for good: that event is a dead letter, every
// other one is delivered, in seq order, once.
func TestFaultRefusesOne(t *testing.T) {
	t.Parallel()
	eachFault(t, func(t *testing.T, fc faultCase) {
		rc := fc.start(t)
		if rc.refuse == nil {
			// Syslog over TCP, a file and S3 objects have no answer per
			// event: nothing to refuse one with.
			return
		}
		store, events := openStore(t, 300)
		bad := events[123]
		rc.refuse(bad.ID)
		set := start(t, store, faultConfig(t, rc, 200, 200*time.Millisecond))
		waitCaughtUp(t, set, "test")
		var want []agenttrail.Event
		for _, e := range events {
			if e.Seq != bad.Seq {
				want = append(want, e)
			}
		}
		seqs, dups := rc.got(t, want)
		checkSeqs(t, seqs, want, false)
		if dups > 0 {
			t.Errorf("the receiver took %d events twice", dups)
		}
		letters, err := set.DeadLetters(t.Context(), "test", 0, 10)
		if err != nil || len(letters) != 1 || letters[0].Seq != bad.Seq || letters[0].EventID != bad.ID {
			t.Fatalf("dead letters = %+v, %v; want the one refused event", letters, err)
		}
		t.Logf("dead letter: %s", letters[0].Reason)
	})
}

// eachFault runs f for every sink type, all at once, each as a subtest of
// t: t.Parallel would run only GOMAXPROCS of them at a time, and a fault
// test mostly waits.
func eachFault(t *testing.T, f func(t *testing.T, fc faultCase)) {
	var wg sync.WaitGroup
	for _, fc := range faultCases {
		wg.Go(func() { t.Run(fc.name, func(t *testing.T) { f(t, fc) }) })
	}
	wg.Wait()
}
