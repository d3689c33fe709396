package wire

// IngestResult is the answer of POST /v1/events, sent once the accepted
// events are durable: how many were accepted (stored, or held in the
// server's spool while the store is unavailable — Spooled says how many of
// them), how many were already stored (same org and id), and which were
// rejected, by index in the request. Rejected is never null. A spooled event
// that turns out to be a duplicate when the spool is replayed is stored once
// all the same.
type IngestResult struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Spooled    int         `json:"spooled"`
	Rejected   []Rejection `json:"rejected"`
}

// Rejection is one event of an ingest request that was not stored: its
// index in the request and why, as "field: message".
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}
