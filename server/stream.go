package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// streamCaps bounds concurrent streams: each polls the store, so past the
// cap in all a new one is refused (503) rather than slowing every reader;
// the caps per org and per token keep one org from taking every stream.
var streamCaps = slotCaps{total: 64, perOrg: 16, perToken: 8}

// Defaults of GET /v1/stream.
const (
	// streamPoll is how often a stream asks the store for new events. A
	// stream reads in seq (commit) order from its last position, so
	// polling misses nothing, whatever the events' times.
	streamPoll = 500 * time.Millisecond
	// streamHeartbeat is how long a stream stays silent before it sends a
	// comment, so proxies and clients do not take it for dead.
	streamHeartbeat = 15 * time.Second
	// streamPage bounds the events read per poll; a full page is followed
	// at once by the next.
	streamPage = 500
	// streamProbe is how often a stream learns the store's newest seq, to
	// move its position past events its filter does not match (see
	// ServeHTTP).
	streamProbe = 5 * time.Second
	// headSkew is how far ahead of the server's clock an event's time may
	// be and still serve to find where the stream starts (see headSeq).
	headSkew = time.Hour
)

// streams serves GET /v1/stream. Its fields are fixed at construction but
// for the shutdown channels, guarded by mu.
type streams struct {
	s         *Server
	slots     *slots
	poll      time.Duration
	heartbeat time.Duration
	probe     time.Duration
	open      prometheus.Gauge

	mu       sync.Mutex
	shutdown map[*http.Server]*shutdownSignal
}

// shutdownSignal is closed once when its http.Server shuts down; Shutdown
// may be called more than once, and runs the hooks each time.
type shutdownSignal struct {
	once sync.Once
	ch   chan struct{}
}

// newStreams returns the stream handler of s, allowing concurrent streams
// up to caps and registering its gauge on s's registry.
func (s *Server) newStreams(caps slotCaps, poll, heartbeat time.Duration) *streams {
	st := &streams{
		s: s, slots: newSlots("streams", caps), poll: poll, heartbeat: heartbeat, probe: streamProbe,
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agenttrail_streams_open",
			Help: "Clients connected to GET /v1/stream.",
		}),
		shutdown: map[*http.Server]*shutdownSignal{},
	}
	if err := s.reg.Register(st.open); err != nil {
		// A second handler on one Server (tests build small ones) shares
		// the gauge.
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err)
		}
		st.open = are.ExistingCollector.(prometheus.Gauge)
	}
	return st
}

// ServeHTTP is GET /v1/stream: Server-Sent Events of every event the filters
// match that is committed after the stream starts, in seq order. Each event
// is "id: <seq>", "event: event" and "data: <the event's JSON>". A client
// that reconnects with Last-Event-ID (the last seq it saw) resumes right
// after it and misses nothing; without it, a stream with since starts at
// the oldest match, and one without starts at the newest commit.
func (st *streams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := st.s
	// First, so that a shutdown from here on ends the stream. (One that
	// began before this request got here does not; Close then ends it at
	// its deadline.)
	shutdown := st.done(r)
	v := r.URL.Query()
	if err := wire.CheckParams(v); err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	f, err := wire.ParseFilter(v, s.now())
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	ctx := r.Context()
	f = scope(principalOf(ctx), f)
	var after int64
	resume := r.Header.Get("Last-Event-ID")
	if resume != "" {
		if after, err = strconv.ParseInt(resume, 10, 64); err != nil || after < 0 {
			writeProblem(w, r, s.log, agenttrail.Invalid("Last-Event-ID", "must be the seq of an event, not %q", resume))
			return
		}
	}
	release, err := st.slots.take(principalOf(ctx))
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	defer release()
	if resume == "" && f.Since.IsZero() {
		if after, err = s.headSeq(ctx); err != nil {
			writeProblem(w, r, s.log, err)
			return
		}
	}
	st.open.Inc()
	defer st.open.Dec()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// The server's WriteTimeout would cut the stream: each write sets its
	// own deadline instead. (net/http lifts the read deadline itself once
	// the request is read.)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteGrace))
		// After the deadline is set: a revocation from here on sets it
		// back to now (see endOnRevoke).
		if revoked(ctx) {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte(": agenttrail stream\nretry: 2000\n\n")) {
		return
	}

	poll := time.NewTicker(st.poll)
	defer poll.Stop()
	lastWrite := time.Now()
	q := agenttrail.Query{Filter: f, Sort: agenttrail.SortSeq, Limit: streamPage, After: &agenttrail.Position{Seq: after}}
	// A store reads "seq > position AND filter" by walking the events
	// after the position, so a filter that has not matched for a while
	// would make every poll walk everything since its last match. Now and
	// then the stream learns the newest seq, head, before it polls: every
	// event up to head was committed before the poll began, so a poll
	// that returns less than a page has seen them all, and the position
	// moves up to head. Each poll then walks only recent events.
	head, lastProbe := after, time.Now()
	if resume != "" || !f.Since.IsZero() {
		// after may be far back: the first probe looks the head up
		// instead of reading forward from there.
		head = -1
	}
	var buf []byte
	for {
		probed := int64(-1)
		if time.Since(lastProbe) >= st.probe {
			if head < 0 {
				head, err = s.headSeq(ctx)
			} else {
				head, err = s.advance(ctx, head)
			}
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("stream: reading events", "err", err)
				}
				return
			}
			probed, lastProbe = head, time.Now()
		}
		page, err := s.store.Query(ctx, q)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("stream: reading events", "err", err)
			}
			return // the client reconnects with Last-Event-ID
		}
		buf = buf[:0]
		for i := range page.Events {
			e := &page.Events[i]
			data, err := json.Marshal(e)
			if err != nil {
				s.log.Error("stream: encoding event", "err", err, "seq", e.Seq)
				return
			}
			buf = append(buf, "id: "...)
			buf = strconv.AppendInt(buf, e.Seq, 10)
			buf = append(buf, "\nevent: event\ndata: "...)
			buf = append(buf, data...) // JSON holds no raw line breaks
			buf = append(buf, "\n\n"...)
			q.After = &agenttrail.Position{Seq: e.Seq}
		}
		if len(buf) > 0 {
			if !write(buf) {
				return
			}
			lastWrite = time.Now()
		}
		if len(page.Events) == q.Limit {
			continue // more are waiting
		}
		if probed > q.After.Seq {
			q.After = &agenttrail.Position{Seq: probed}
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-shutdown:
				return
			case <-poll.C:
				waiting = false
			}
			if time.Since(lastWrite) >= st.heartbeat {
				if !write([]byte(": heartbeat\n\n")) {
					return
				}
				lastWrite = time.Now()
			}
		}
	}
}

// headSeq returns the seq of the newest commit: where a stream without a
// resume point starts, and where an export ends. The store has no call for it, so it starts from the
// event with the newest time (up to headSkew ahead of now, so one event
// from a broken clock far in the future cannot anchor it) and pages
// forward in seq order: only events committed after that one are read,
// which in a live trail are few.
func (s *Server) headSeq(ctx context.Context) (int64, error) {
	p, err := s.store.Query(ctx, agenttrail.Query{
		Filter: agenttrail.Filter{Until: s.now().Add(headSkew)},
		Sort:   agenttrail.SortTimeDesc, Limit: 1,
	})
	if err != nil {
		return 0, err
	}
	var head int64
	if len(p.Events) > 0 {
		head = p.Events[0].Seq
	}
	return s.advance(ctx, head)
}

// advance returns the newest seq in the store, reading forward from seq
// from, in every org: it is used as a position only, never sent.
func (s *Server) advance(ctx context.Context, from int64) (int64, error) {
	for {
		p, err := s.store.Query(ctx, agenttrail.Query{Sort: agenttrail.SortSeq, Limit: exportPage, After: &agenttrail.Position{Seq: from}})
		if err != nil {
			return 0, err
		}
		if n := len(p.Events); n > 0 {
			from = p.Events[n-1].Seq
		}
		if len(p.Events) < exportPage {
			return from, nil
		}
	}
}

// done returns a channel closed when the http.Server serving r shuts down.
// Shutdown waits for requests in flight to finish, and a stream never
// would; RegisterOnShutdown is how net/http tells long-lived handlers.
func (st *streams) done(r *http.Request) <-chan struct{} {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	sig, ok := st.shutdown[srv]
	if !ok {
		sig = &shutdownSignal{ch: make(chan struct{})}
		st.shutdown[srv] = sig
		srv.RegisterOnShutdown(func() { sig.once.Do(func() { close(sig.ch) }) })
	}
	return sig.ch
}
