package kube

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// TestFollowedLogsStream checks a followed log reaches the client line by
// line while the upstream is still writing, and is recorded once, when it
// ends, with its full duration.
func TestFollowedLogsStream(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "line 1\n")
		w.(http.Flusher).Flush()
		<-next // the client has read line 1 before line 2 is written
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "line 2\n")
	}))
	defer up.Close()
	proxy, rec, stop := startStoppableProxy(t, up.URL, Config{})

	req, _ := http.NewRequest(http.MethodGet, proxy+"/api/v1/namespaces/default/pods/web/log?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+agentToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "line 1\n" {
		close(next)
		t.Fatalf("first line %q, %v", line, err)
	}
	if n := rec.Len(); n != 0 {
		t.Errorf("%d events recorded while the log is still open, want 0", n)
	}
	close(next)
	if rest, _ := io.ReadAll(br); string(rest) != "line 2\n" {
		t.Fatalf("rest of the log %q", rest)
	}
	e := rec.Wait(t, 1)[0]
	m := k8sMeta(t, e)
	if m.Subresource != "log" || !m.LongRunning || e.DurationMS < 100 || e.Result != agenttrail.ResultSuccess || e.ResourceID != "default/web" {
		t.Errorf("event %s %s %.1f ms, metadata %+v", e.Action, e.Result, e.DurationMS, m)
	}
	stop() // once it returns, no request is left that could record another event
	if n := rec.Len(); n != 1 {
		t.Errorf("%d events for one followed log, want 1", n)
	}
}

// TestExecUpgrade checks an exec session, which upgrades the connection,
// passes bytes both ways and is recorded once when it closes.
func TestExecUpgrade(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+upstreamToken || !strings.EqualFold(r.Header.Get("Upgrade"), "SPDY/3.1") {
			http.Error(w, "want an upgrade with the upstream token", http.StatusBadRequest)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
		buf.Flush()
		line, _ := buf.ReadString('\n') // echo one line back: the "shell"
		buf.WriteString("echo: " + line)
		buf.Flush()
	}))
	defer up.Close()
	proxy, rec := startProxy(t, up.URL, Config{})
	u, _ := url.Parse(proxy)

	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true HTTP/1.1\r\nHost: "+u.Host+
		"\r\nAuthorization: Bearer "+agentToken+"\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	io.WriteString(conn, "whoami\n")
	if line, err := br.ReadString('\n'); line != "echo: whoami\n" {
		t.Fatalf("exec echo %q, %v", line, err)
	}
	conn.Close()
	e := rec.Wait(t, 1)[0]
	m := k8sMeta(t, e)
	if m.Verb != "create" || m.Subresource != "exec" || !m.LongRunning || e.StatusCode != http.StatusSwitchingProtocols || e.Result != agenttrail.ResultSuccess {
		t.Errorf("event %s %d %s, metadata %+v", e.Action, e.StatusCode, e.Result, m)
	}
}
