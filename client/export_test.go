package client

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/servertest"
)

// ingestN records n events with ids prefix-i and returns them.
func ingestN(t *testing.T, c *Client, prefix string, n int) []agenttrail.Event {
	t.Helper()
	now := time.Now().UTC()
	events := make([]agenttrail.Event, n)
	for i := range events {
		events[i] = testEvent(i)
		events[i].ID = fmt.Sprintf("%s-%d", prefix, i)
		events[i].Time = now
	}
	res, err := c.Ingest(context.Background(), events)
	if err != nil || res.Accepted != n {
		t.Fatalf("Ingest(%d) = %+v, %v", n, res, err)
	}
	return events
}

func TestExportAgainstServer(t *testing.T) {
	srv := servertest.StartAt(t, "127.0.0.1:0", t.TempDir())
	c := New(srv.URL, WithToken(srv.Token))
	defer c.CloseIdleConnections()
	events := ingestN(t, c, "e", 1500)
	ctx := context.Background()

	var buf bytes.Buffer
	if err := c.Export(ctx, agentEvents(), "csv", &buf); err != nil {
		t.Fatalf("Export csv: %v", err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != len(events)+1 {
		t.Fatalf("Export csv: %d rows, %v; want %d", len(rows), err, len(events)+1)
	}

	buf.Reset()
	f := agenttrail.Filter{ActorID: []string{"agent-3"}}
	if err := c.Export(ctx, f, "", &buf); err != nil {
		t.Fatalf("Export ndjson: %v", err)
	}
	want := 0
	for i := range events {
		if f.Match(&events[i]) {
			want++
		}
	}
	if got := strings.Count(buf.String(), "\n"); got != want || want == 0 {
		t.Errorf("Export ndjson actor_id=agent-3: %d lines, want %d", got, want)
	}

	err = c.Export(ctx, agenttrail.Filter{}, "xml", &buf)
	if agenttrail.ErrorCode(err) != agenttrail.EINVALID || agenttrail.ErrorField(err) != "format" {
		t.Errorf("Export xml = %v, want EINVALID naming format", err)
	}
}

// follow runs Stream in a goroutine and delivers its events on a channel.
func follow(t *testing.T, c *Client, f agenttrail.Filter, lastSeq int64) (<-chan agenttrail.Event, <-chan error, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan agenttrail.Event, 1024)
	done := make(chan error, 1)
	go func() {
		done <- c.Stream(ctx, f, lastSeq, func(e agenttrail.Event) error {
			events <- e
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return events, done, cancel
}

func receive(t *testing.T, ch <-chan agenttrail.Event, want []agenttrail.Event) {
	t.Helper()
	var last int64
	for i, w := range want {
		select {
		case e := <-ch:
			if e.ID != w.ID || e.Seq <= last {
				t.Fatalf("event %d = %s (seq %d), want %s after seq %d", i, e.ID, e.Seq, w.ID, last)
			}
			last = e.Seq
		case <-time.After(15 * time.Second):
			t.Fatalf("event %d (%s) not received", i, w.ID)
		}
	}
}

func TestStreamAgainstServerAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.StartAt(t, "127.0.0.1:0", dir)
	addr := strings.TrimPrefix(srv.URL, "http://")
	c := New(srv.URL, WithToken(srv.Token))
	defer c.CloseIdleConnections()
	ingestN(t, c, "before", 5)

	// Start after "before" by its last seq: a stream without one starts
	// whenever it connects, which a loaded machine may delay.
	page, err := c.Query(context.Background(), agentEvents(), QueryOptions{Sort: agenttrail.SortSeq, Limit: 10})
	if err != nil || len(page.Events) != 5 {
		t.Fatalf("Query = %d events, %v", len(page.Events), err)
	}
	ch, _, _ := follow(t, c, agenttrail.Filter{ActorID: []string{"agent-1", "agent-2"}}, page.Events[4].Seq)
	first := ingestN(t, c, "first", 14)
	receive(t, ch, pick(first, "agent-1", "agent-2"))

	// The server restarts; the stream reconnects and resumes.
	srv.Stop()
	srv = servertest.StartAt(t, addr, dir)
	second := ingestN(t, c, "second", 14)
	receive(t, ch, pick(second, "agent-1", "agent-2"))
	select {
	case e := <-ch:
		t.Errorf("unexpected event %s (a repeat?)", e.ID)
	case <-time.After(300 * time.Millisecond):
	}
}

func pick(events []agenttrail.Event, actors ...string) []agenttrail.Event {
	f := agenttrail.Filter{ActorID: actors}
	var out []agenttrail.Event
	for i := range events {
		if f.Match(&events[i]) {
			out = append(out, events[i])
		}
	}
	return out
}

func TestStreamResumeAndErrors(t *testing.T) {
	srv := servertest.StartAt(t, "127.0.0.1:0", t.TempDir())
	c := New(srv.URL, WithToken(srv.Token))
	defer c.CloseIdleConnections()
	events := ingestN(t, c, "e", 10)

	// Resume after the third event's seq.
	var seqs []int64
	stop := errors.New("stop")
	since := agentEvents()
	since.Since = time.Now().Add(-time.Hour)
	err := c.Stream(context.Background(), since, 0, func(e agenttrail.Event) error {
		seqs = append(seqs, e.Seq)
		if len(seqs) == len(events) {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || len(seqs) != len(events) {
		t.Fatalf("Stream since 1h = %v after %d events, want the callback's error after %d", err, len(seqs), len(events))
	}
	ch, _, _ := follow(t, c, agentEvents(), seqs[2])
	receive(t, ch, events[3:])

	// A bad filter is refused at once.
	err = c.Stream(context.Background(), agenttrail.Filter{ActorType: []string{"robot"}}, 0, func(agenttrail.Event) error { return nil })
	if agenttrail.ErrorField(err) != "actor_type" {
		t.Errorf("Stream actor_type=robot = %v, want an error naming actor_type", err)
	}

	// A server that is not there fails the first connection at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	d := New(dead)
	start := time.Now()
	if err := d.Stream(context.Background(), agenttrail.Filter{}, 0, func(agenttrail.Event) error { return nil }); err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("Stream to a closed port = %v after %v, want an error at once", err, time.Since(start))
	}
}
