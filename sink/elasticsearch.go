package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// elasticsearch indexes batches through the _bulk API (Elasticsearch and
// OpenSearch alike): one "create" action per event with _id
// "<org>/<event id>" (ids are unique per org), so a batch sent again
// creates nothing twice: a 409 (version_conflict_engine_exception) means
// the document is already there, and counts as delivered. Per item, 429,
// 5xx and es_rejected_execution_exception are retried (only those items);
// any other refusal (a mapping conflict, 400) sends the event to the dead
// letters. The payload is the event as JSON (native or ocsf).
type elasticsearch struct {
	url, index, apiKey string
	hc                 *http.Client
}

func newElasticsearch(c Config) (*elasticsearch, error) {
	key, err := c.Token()
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(c)
	if err != nil {
		return nil, err
	}
	index := c.Index
	if index == "" {
		index = "agenttrail"
	}
	return &elasticsearch{url: strings.TrimRight(c.URL, "/"), index: index, apiKey: key, hc: hc}, nil
}

// bulkAnswer is the part of a _bulk answer read here.
type bulkAnswer struct {
	Errors bool `json:"errors"`
	Items  []map[string]struct {
		Status int `json:"status"`
		Error  *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	} `json:"items"`
}

func (s *elasticsearch) Deliver(ctx context.Context, b *Batch) (*Result, error) {
	var buf bytes.Buffer
	for i := range b.Events {
		e := &b.Events[i]
		action, _ := json.Marshal(map[string]any{"create": map[string]string{"_index": s.index, "_id": e.Org + "/" + e.ID}})
		buf.Write(action)
		buf.WriteByte('\n')
		buf.Write(bytes.TrimRight(b.Payloads[i], "\r\n"))
		buf.WriteByte('\n')
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-ndjson")
	if s.apiKey != "" {
		h.Set("Authorization", "ApiKey "+s.apiKey)
	}
	status, rh, rb, err := post(ctx, s.hc, s.url+"/_bulk", buf.Bytes(), h)
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, statusError(status, rh, rb)
	}
	var a bulkAnswer
	if err := json.Unmarshal(rb, &a); err != nil || len(a.Items) != len(b.Events) {
		return nil, &Unavailable{Err: fmt.Errorf("_bulk answer with %d items for %d events: %v %s", len(a.Items), len(b.Events), err, snippet(rb))}
	}
	if !a.Errors {
		return nil, nil
	}
	res := &Result{}
	for i, item := range a.Items {
		for _, r := range item { // one action per item
			switch {
			case r.Status/100 == 2, r.Status == http.StatusConflict:
			case r.Status == http.StatusTooManyRequests || r.Status >= 500 || (r.Error != nil && r.Error.Type == "es_rejected_execution_exception"):
				res.Retry = append(res.Retry, i)
			default:
				reason := fmt.Sprintf("_bulk item status %d", r.Status)
				if r.Error != nil {
					reason += ": " + r.Error.Type + ": " + r.Error.Reason
				}
				if res.Rejected == nil {
					res.Rejected = map[int]string{}
				}
				res.Rejected[i] = reason
			}
		}
	}
	res.RetryAfter = retryAfter(rh)
	return res, nil
}

func (s *elasticsearch) Close() error {
	s.hc.CloseIdleConnections()
	return nil
}
