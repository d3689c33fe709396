package sink

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail/export"
)

// hec sends batches to Splunk's HTTP Event Collector as its documentation
// says: POST /services/collector/event with "Authorization: Splunk TOKEN"
// and the events stacked as JSON objects in one body, each
//
//	{"time": <epoch seconds>, "host": …, "source": "agenttrail",
//	 "sourcetype": "agenttrail:<format>", "index": …,
//	 "fields": {"agenttrail_id": …, "agenttrail_seq": …, "agenttrail_org": …},
//	 "event": <the event in the sink's format>}
//
// The event id travels as the indexed field agenttrail_id, to deduplicate
// on in searches. With ack: true every request carries
// X-Splunk-Request-Channel, and Deliver returns only once
// /services/collector/ack says the batch's ackId was indexed; a batch not
// acknowledged within ackTimeout is sent again (at least once).
//
// HEC error codes: 9 (server busy) and 8 (internal) are retried; 6
// (invalid data format, with invalid-event-number), 12 and 13 (event field
// required or blank) send that event to the dead letters and retry the
// rest; 1–4 (token), 7 (incorrect index), 10 and 11 (channel), 14 (ack
// disabled) halt the sink until someone fixes the receiver, reported as
// its last error.
type hec struct {
	url, token, index string
	ack               bool
	channel           string
	host              string
	sourcetype        string
	json              bool // the payload is a JSON object (native, ocsf), not a string
	hc                *http.Client
	ackPoll           time.Duration
	ackTimeout        time.Duration
}

func newHEC(c Config) (*hec, error) {
	token, err := c.Token()
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(c)
	if err != nil {
		return nil, err
	}
	var ch [16]byte
	rand.Read(ch[:])
	// A UUID-shaped channel, as HEC wants one.
	channel := fmt.Sprintf("%s-%s-%s-%s-%s", hex.EncodeToString(ch[0:4]), hex.EncodeToString(ch[4:6]), hex.EncodeToString(ch[6:8]), hex.EncodeToString(ch[8:10]), hex.EncodeToString(ch[10:16]))
	host, _ := os.Hostname()
	return &hec{url: strings.TrimRight(c.URL, "/"), token: token, index: c.Index, ack: c.Ack, channel: channel, host: host,
		sourcetype: "agenttrail:" + c.Format, json: c.Format == FormatNative || c.Format == export.OCSF, hc: hc,
		ackPoll: 200 * time.Millisecond, ackTimeout: 2 * time.Minute}, nil
}

// hecAnswer is HEC's JSON answer.
type hecAnswer struct {
	Text               string `json:"text"`
	Code               int    `json:"code"`
	AckID              *int64 `json:"ackId"`
	InvalidEventNumber *int   `json:"invalid-event-number"`
}

func (h *hec) header() http.Header {
	hd := http.Header{}
	hd.Set("Authorization", "Splunk "+h.token)
	hd.Set("Content-Type", "application/json")
	if h.ack {
		hd.Set("X-Splunk-Request-Channel", h.channel)
	}
	return hd
}

func (h *hec) body(b *Batch) ([]byte, error) {
	var buf bytes.Buffer
	for i := range b.Events {
		e := &b.Events[i]
		payload := bytes.TrimRight(b.Payloads[i], "\r\n")
		var event any = json.RawMessage(payload)
		if !h.json {
			event = string(payload)
		}
		obj := map[string]any{
			"time":       float64(e.Time.UnixMicro()) / 1e6,
			"host":       h.host,
			"source":     "agenttrail",
			"sourcetype": h.sourcetype,
			"fields":     map[string]any{"agenttrail_id": e.ID, "agenttrail_seq": strconv.FormatInt(e.Seq, 10), "agenttrail_org": e.Org},
			"event":      event,
		}
		if h.index != "" {
			obj["index"] = h.index
		}
		line, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("encode seq %d: %w", e.Seq, err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

func (h *hec) Deliver(ctx context.Context, b *Batch) (*Result, error) {
	body, err := h.body(b)
	if err != nil {
		return nil, &Refused{Reason: err.Error()}
	}
	status, rh, rb, err := post(ctx, h.hc, h.url+"/services/collector/event", body, h.header())
	if err != nil {
		return nil, err
	}
	var a hecAnswer
	if jerr := json.Unmarshal(rb, &a); jerr != nil {
		if status/100 == 2 {
			return nil, &Unavailable{Err: fmt.Errorf("HEC answered %d with no JSON: %s", status, snippet(rb))}
		}
		return nil, statusError(status, rh, rb)
	}
	if status/100 == 2 && a.Code == 0 {
		if !h.ack {
			return nil, nil
		}
		if a.AckID == nil {
			return nil, &Halted{Err: fmt.Errorf("HEC gave no ackId though ack is on: is indexer acknowledgement enabled for this token?")}
		}
		return nil, h.waitAck(ctx, *a.AckID)
	}
	err = fmt.Errorf("HEC answered %d, code %d: %s", status, a.Code, a.Text)
	switch a.Code {
	case 8, 9:
		return nil, &Unavailable{Err: err, After: retryAfter(rh)}
	case 6, 12, 13:
		n := -1
		if a.InvalidEventNumber != nil {
			n = *a.InvalidEventNumber
		}
		if n < 0 || n >= len(b.Events) {
			return nil, &Refused{Reason: err.Error()}
		}
		res := &Result{Rejected: map[int]string{n: err.Error()}}
		// Without acknowledgement, HEC indexed the events before the bad
		// one; with it there is no ackId to confirm them, so they go again.
		from := n + 1
		if h.ack {
			from = 0
		}
		for i := from; i < len(b.Events); i++ {
			if i != n {
				res.Retry = append(res.Retry, i)
			}
		}
		return res, nil
	case 1, 2, 3, 4, 7, 10, 11, 14:
		return nil, &Halted{Err: err}
	}
	return nil, statusError(status, rh, rb)
}

// waitAck polls /services/collector/ack until id is acknowledged.
func (h *hec) waitAck(ctx context.Context, id int64) error {
	deadline := time.Now().Add(h.ackTimeout)
	body := []byte(fmt.Sprintf(`{"acks":[%d]}`, id))
	for {
		status, rh, rb, err := post(ctx, h.hc, h.url+"/services/collector/ack?channel="+h.channel, body, h.header())
		if err != nil {
			return err
		}
		if status/100 != 2 {
			return statusError(status, rh, rb)
		}
		var a struct {
			Acks map[string]bool `json:"acks"`
		}
		if err := json.Unmarshal(rb, &a); err != nil {
			return &Unavailable{Err: fmt.Errorf("HEC ack answer: %w", err)}
		}
		if a.Acks[strconv.FormatInt(id, 10)] {
			return nil
		}
		if time.Now().After(deadline) {
			return &Unavailable{Err: fmt.Errorf("HEC did not acknowledge ackId %d within %v; sending the batch again", id, h.ackTimeout)}
		}
		t := time.NewTimer(h.ackPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return &Unavailable{Err: ctx.Err()}
		case <-t.C:
		}
	}
}

func (h *hec) Close() error {
	h.hc.CloseIdleConnections()
	return nil
}
