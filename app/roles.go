package app

import (
	"context"
	"fmt"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/wire"
)

// The roles of a node (Config.Role).
const (
	RoleAll    = "all"    // everything in one process: without NATS, today's single server
	RoleIngest = "ingest" // HTTP ingest into the stream; no store
	RoleWriter = "writer" // commits the stream into the store, one active per store
	RoleQuery  = "query"  // the read API, console, exports, streams and sinks; no ingest
)

// checkRole reports what is wrong with the role and NATS settings.
func checkRole(cfg Config) error {
	role := roleOf(cfg)
	switch role {
	case RoleAll, RoleIngest, RoleWriter, RoleQuery:
	default:
		return fmt.Errorf("--role: want all, ingest, writer or query, not %q", cfg.Role)
	}
	if cfg.NATS.URL == "" {
		if role != RoleAll {
			return fmt.Errorf("--role %s needs --nats: the %s role is one part of a cluster that shares a NATS JetStream stream", role, role)
		}
		return nil
	}
	if err := cfg.NATS.Check(); err != nil {
		return err
	}
	if storeKind(cfg.Store) == "sqlite" {
		return fmt.Errorf("--role %s with --nats needs a PostgreSQL store (--store postgres://…): a writer commits into a store other nodes read, every node reads the tokens and keys the cluster shares from it, and one process owns a SQLite file", role)
	}
	if role != RoleIngest && cfg.SigningKey == "" {
		return fmt.Errorf("--role %s with --nats needs --signing-key FILE (configuration key signing_key): the key that signs the checkpoints must not sit in the database they protect, where whoever can rewrite the trail could re-sign it; give every node with a store the same key file from your secret store (make one with `agenttrail signing-key FILE`; a cluster that kept its key in the store moves it out with `agenttrail signing-key FILE --store postgres://…`)", role)
	}
	if role == RoleIngest && len(cfg.Sinks) > 0 {
		return fmt.Errorf("sinks run on a node with the store (writer or query), one at a time: an ingest node (--role ingest) has no store to deliver from")
	}
	if role == RoleIngest && (cfg.Retain > 0 || len(cfg.RetentionRules) > 0) {
		return fmt.Errorf("retention runs on writer nodes: an ingest node (--role ingest) has no store")
	}
	return nil
}

func roleOf(cfg Config) string {
	if cfg.Role == "" {
		return RoleAll
	}
	return cfg.Role
}

// commits reports whether a node of role runs a writer of the stream.
func commits(role string) bool { return role == RoleWriter || role == RoleAll }

// natsConnectTimeout bounds the first connection to NATS at start.
const natsConnectTimeout = 10 * time.Second

// noReads is the Reader of an ingest node, which has no store: reads are
// for query nodes, and readiness is the stream's.
type noReads struct{ c *cluster.Conn }

func (noReads) refuse() error {
	return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "this node (--role ingest) serves no reads; ask a query node")
}

func (r noReads) Get(context.Context, string, agenttrail.Filter) (agenttrail.Event, error) {
	return agenttrail.Event{}, r.refuse()
}

func (r noReads) Query(context.Context, agenttrail.Query) (agenttrail.Page, error) {
	return agenttrail.Page{}, r.refuse()
}

func (r noReads) Aggregate(context.Context, agenttrail.Filter, agenttrail.Dimension) ([]agenttrail.Bucket, error) {
	return nil, r.refuse()
}

func (r noReads) Series(context.Context, agenttrail.Filter, agenttrail.Interval, agenttrail.Dimension) ([]agenttrail.TimeBucket, error) {
	return nil, r.refuse()
}

func (r noReads) HeartbeatGaps(context.Context, agenttrail.Filter, time.Duration) ([]agenttrail.HeartbeatGap, error) {
	return nil, r.refuse()
}

func (r noReads) SequenceGaps(context.Context, agenttrail.Filter) ([]agenttrail.SequenceGap, error) {
	return nil, r.refuse()
}

func (r noReads) Ping(ctx context.Context) error { return r.c.Ping(ctx) }

// clusterReport is a cluster node's part of /readyz.
type clusterReport struct{ m *Main }

// ClusterStatus reports the node's NATS connection, the stream and the
// writers' lag. A writer node that is not connected to NATS cannot do its
// part; an ingest node can (it spools, which its readiness says already),
// and so can a query node (it reads the store).
func (r clusterReport) ClusterStatus(ctx context.Context) (wire.ClusterStatus, error) {
	st := r.m.nats.Status(ctx)
	out := wire.ClusterStatus{Role: r.m.role, NATSConnected: st.Connected}
	if st.Stream {
		out.Stream = &wire.StreamStatus{Messages: st.Messages, Bytes: st.Bytes, MaxBytes: st.MaxBytes, MaxAgeSeconds: st.MaxAge.Seconds()}
	}
	if st.Consumer {
		out.Consumer = &wire.ConsumerStatus{Pending: st.Pending, AckPending: st.AckPending, Redelivered: st.Redelivered}
	}
	if r.m.writer != nil {
		active := r.m.writer.Active()
		out.WriterActive = &active
	}
	if r.m.role == RoleWriter && !st.Connected {
		return out, fmt.Errorf("this writer is not connected to NATS")
	}
	return out, nil
}
