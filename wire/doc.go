// Package wire is the HTTP wire format of agenttrail, imported by the
// server and by the client (the Go SDK) alike, so the two cannot drift: the
// request and response bodies, the problem document every error is sent
// as and the one table between error codes and HTTP statuses, the
// encoding of filters as query parameters, and the cursors of paged
// reads. The domain types it carries (agenttrail.Event, Filter, Bucket, …)
// are the root package's; this package only says how they travel.
package wire
