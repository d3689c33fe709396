package mcp

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail/capture"
)

// Methods the observer treats specially.
const (
	methodInitialize = "initialize"
	methodDiscover   = "server/discover"
	methodPing       = "ping"
	methodCancelled  = "notifications/cancelled"
	methodToolsCall  = "tools/call"
)

// idleSessionSweep is the number of registered sessions above which idle
// ones are forgotten when a new one arrives, bounding memory when clients
// never DELETE their sessions.
const idleSessionSweep = 1024

// observer pairs the JSON-RPC requests both transports relay with their
// responses and records one event per pair. It is the only place that
// decides what becomes an event. It is safe for concurrent use.
type observer struct {
	cfg       Config
	transport string // "stdio" or "http"

	mu       sync.Mutex
	sessions map[string]*session // by Mcp-Session-Id (HTTP only)
}

// session is one client's conversation with the server: the stdio pipe, an
// HTTP Mcp-Session-Id, or one sessionless HTTP exchange. Its fields are
// guarded by observer.mu.
type session struct {
	id       string
	server   *Implementation // what the server reported of itself
	client   *Implementation // what the client reported of itself
	agent    capture.Actor   // the last agent seen on the session
	pending  map[callKey]*call
	lastSeen time.Time
}

// callKey names a pending request: JSON-RPC ids are unique per sender, so
// the same id may be pending in both directions at once.
type callKey struct {
	fromServer bool
	id         string
}

// call is a request waiting for its response.
type call struct {
	key    callKey
	id     json.RawMessage
	method string
	params requestParams
	start  time.Time
	actor  capture.Actor
	span   capture.Span
	timer  *time.Timer
}

// outcome is how a call ended, with what the event needs of its session,
// copied under the lock.
type outcome struct {
	call      *call
	resp      *message // nil when the call got no response
	status    int      // HTTP status of the exchange that carried resp
	reason    string   // why there is no response
	cancelled bool
	unread    bool // a response came but was too large to read
	sessionID string
	server    *Implementation
	client    *Implementation
	end       time.Time
}

func newObserver(cfg Config, transport string) *observer {
	return &observer{cfg: cfg, transport: transport, sessions: map[string]*session{}}
}

// session returns the registered session id, creating it. An empty id
// returns a new unregistered session: the stdio pipe, or an HTTP exchange
// that carries no Mcp-Session-Id.
func (o *observer) session(id string) *session {
	if id == "" {
		return newSession("", o.cfg.Now())
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	s, ok := o.sessions[id]
	if !ok {
		o.sweepLocked()
		s = newSession(id, o.cfg.Now())
		o.sessions[id] = s
	}
	return s
}

func newSession(id string, now time.Time) *session {
	return &session{id: id, pending: map[callKey]*call{}, lastSeen: now}
}

// adopt registers s under the session id the server assigned to it in the
// response to initialize, so later exchanges of the session find what the
// initialize exchange learned.
func (o *observer) adopt(s *session, id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s.id != "" || id == "" {
		return
	}
	if _, ok := o.sessions[id]; ok {
		return
	}
	o.sweepLocked()
	s.id = id
	o.sessions[id] = s
}

// sweepLocked forgets idle sessions with nothing pending once there are many.
func (o *observer) sweepLocked() {
	if len(o.sessions) < idleSessionSweep {
		return
	}
	cutoff := o.cfg.Now().Add(-2 * o.cfg.Timeout)
	for id, s := range o.sessions {
		if len(s.pending) == 0 && s.lastSeen.Before(cutoff) {
			delete(o.sessions, id)
		}
	}
}

// observe reads one relayed payload, a message or a batch, sent by the
// client (fromServer false) or by the server, on behalf of agent. It
// registers requests, completes the calls that responses answer and handles
// notifications/cancelled, recording an event for each completed call.
// status is the HTTP status of the exchange carrying the payload (0 on
// stdio). It returns the keys of the requests it registered. Requests must be
// observed before they are relayed, so that their response cannot overtake
// them.
//
// span is the span of the HTTP request that carried payload (the zero Span
// on stdio and for responses): see callSpan.
func (o *observer) observe(s *session, fromServer bool, payload []byte, agent capture.Actor, status int, span capture.Span) []callKey {
	msgs, err := parseMessages(payload)
	if err != nil {
		o.cfg.Logger.Debug("mcp proxy: relayed a message it cannot parse", "transport", o.transport, "err", err)
		return nil
	}
	now := o.cfg.Now()
	var keys []callKey
	var done []outcome
	o.mu.Lock()
	s.lastSeen = now
	if !fromServer {
		s.agent = agent
	}
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.isRequest():
			if k, ok := o.requestLocked(s, fromServer, m, now, span, &done); ok {
				keys = append(keys, k)
			}
		case m.isResponse():
			// A response travels opposite to its request.
			k := callKey{fromServer: !fromServer, id: m.idKey()}
			if c := o.takeLocked(s, k); c != nil {
				o.learnServerLocked(s, m)
				done = append(done, o.outcomeLocked(s, c, m, status, "", now))
			}
		case m.isNotification() && m.Method == methodCancelled:
			p := parseParams(m.Params)
			k := callKey{fromServer: fromServer, id: string(trimID(p.RequestID))}
			if c := o.takeLocked(s, k); c != nil {
				oc := o.outcomeLocked(s, c, nil, status, "cancelled", now)
				oc.cancelled = true
				if p.Reason != "" {
					oc.reason = "cancelled: " + p.Reason
				}
				done = append(done, oc)
			}
		}
	}
	o.mu.Unlock()
	for _, oc := range done {
		o.record(oc)
	}
	return keys
}

// requestLocked registers a request, unless it is one the trail skips. A
// request pending under the same id is closed into done.
func (o *observer) requestLocked(s *session, fromServer bool, m *message, now time.Time, span capture.Span, done *[]outcome) (callKey, bool) {
	if m.Method == methodPing {
		return callKey{}, false
	}
	p := parseParams(m.Params)
	if !fromServer && p.ClientInfo != nil {
		s.client = p.ClientInfo
	}
	k := callKey{fromServer: fromServer, id: m.idKey()}
	if old := o.takeLocked(s, k); old != nil {
		// A reused id: the earlier request will never be told apart from
		// this one, so it is closed now rather than mismatched later.
		o.cfg.Logger.Warn("mcp proxy: request id reused while pending", "method", old.method, "id", k.id)
		*done = append(*done, o.outcomeLocked(s, old, nil, 0, "request id reused before a response", now))
	}
	c := &call{key: k, id: m.ID, method: m.Method, params: p, start: now, actor: s.agent, span: callSpan(p.Meta, span)}
	c.timer = time.AfterFunc(o.cfg.Timeout, func() { o.expire(s, c) })
	s.pending[k] = c
	return k, true
}

// takeLocked removes and returns the call pending under k, if any.
func (o *observer) takeLocked(s *session, k callKey) *call {
	c, ok := s.pending[k]
	if !ok {
		return nil
	}
	delete(s.pending, k)
	c.timer.Stop()
	return c
}

// learnServerLocked remembers what the server says of itself in a response:
// serverInfo in the initialize result, or the SEP-2575 _meta serverInfo.
func (o *observer) learnServerLocked(s *session, m *message) {
	if m.Result == nil {
		return
	}
	var r struct {
		ServerInfo *Implementation            `json:"serverInfo"`
		Meta       map[string]json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(m.Result, &r) != nil {
		return
	}
	if r.ServerInfo != nil && r.ServerInfo.Name != "" {
		s.server = r.ServerInfo
	} else if impl := metaImplementation(r.Meta, metaServerInfo); impl != nil {
		s.server = impl
	}
}

func (o *observer) outcomeLocked(s *session, c *call, resp *message, status int, reason string, now time.Time) outcome {
	return outcome{
		call: c, resp: resp, status: status, reason: reason,
		sessionID: s.id, server: s.server, client: s.client, end: now,
	}
}

// expire records a call whose response did not come within the timeout.
func (o *observer) expire(s *session, c *call) {
	now := o.cfg.Now()
	o.mu.Lock()
	if s.pending[c.key] != c {
		o.mu.Unlock()
		return
	}
	delete(s.pending, c.key)
	oc := o.outcomeLocked(s, c, nil, 0, "no response within "+o.cfg.Timeout.String(), now)
	o.mu.Unlock()
	o.record(oc)
}

// abandon records each call of keys still pending in s as an error: the
// exchange that should have carried its response is over.
func (o *observer) abandon(s *session, keys []callKey, status int, reason string) {
	if len(keys) == 0 {
		return
	}
	now := o.cfg.Now()
	var done []outcome
	o.mu.Lock()
	for _, k := range keys {
		if c := o.takeLocked(s, k); c != nil {
			done = append(done, o.outcomeLocked(s, c, nil, status, reason, now))
		}
	}
	o.mu.Unlock()
	for _, oc := range done {
		o.record(oc)
	}
}

// unread records each call of keys still pending in s as answered by a
// response too large to observe: it came, but what it said is unknown.
func (o *observer) unread(s *session, keys []callKey, status int) {
	now := o.cfg.Now()
	var done []outcome
	o.mu.Lock()
	for _, k := range keys {
		if c := o.takeLocked(s, k); c != nil {
			oc := o.outcomeLocked(s, c, nil, status, "", now)
			oc.unread = true
			done = append(done, oc)
		}
	}
	o.mu.Unlock()
	for _, oc := range done {
		o.record(oc)
	}
}

// end records every call pending in s as an error and forgets s.
func (o *observer) end(s *session, reason string) {
	now := o.cfg.Now()
	var done []outcome
	o.mu.Lock()
	for k := range s.pending {
		done = append(done, o.outcomeLocked(s, o.takeLocked(s, k), nil, 0, reason, now))
	}
	if s.id != "" && o.sessions[s.id] == s {
		delete(o.sessions, s.id)
	}
	o.mu.Unlock()
	for _, oc := range done {
		o.record(oc)
	}
}

// endID ends the registered session id, if there is one.
func (o *observer) endID(id, reason string) {
	o.mu.Lock()
	s, ok := o.sessions[id]
	o.mu.Unlock()
	if ok {
		o.end(s, reason)
	}
}

// endAll ends every registered session.
func (o *observer) endAll(reason string) {
	o.mu.Lock()
	all := make([]*session, 0, len(o.sessions))
	for _, s := range o.sessions {
		all = append(all, s)
	}
	o.mu.Unlock()
	for _, s := range all {
		o.end(s, reason)
	}
}

// trimID returns a JSON-RPC id in the form idKey uses.
func trimID(id json.RawMessage) json.RawMessage {
	m := message{ID: id}
	return json.RawMessage(m.idKey())
}
