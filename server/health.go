package server

import (
	"context"
	"net/http"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// Degrader reports on a write path that can accept events without the
// store (*ingest.Spool does): why ingest does not go straight to the store
// ("" when it does), and whether it refuses events. It must be safe for
// concurrent use.
type Degrader interface {
	Degraded() (reason string, refusing bool)
}

// pingTimeout bounds the store check of /readyz: a store that takes longer
// is not ready, whatever it would answer eventually.
const pingTimeout = 2 * time.Second

// livez is GET /livez: the process is up and serving.
func (s *Server) livez(*http.Request) (any, error) {
	return wire.Status{Status: "ok"}, nil
}

// ClusterReporter is a cluster node's part of /readyz.
type ClusterReporter interface {
	// ClusterStatus returns the node's view of its cluster, and an error
	// saying why when the node cannot do its part.
	ClusterStatus(ctx context.Context) (wire.ClusterStatus, error)
}

// readyz is GET /readyz: the store answers. With a spool it is 200
// "degraded" while the store is down but the spool has room, because a load
// balancer should keep sending ingest traffic to a server that keeps it
// durably; 503 once the spool refuses events, as without a spool. A
// cluster node adds its view of the cluster, and is not ready when it
// cannot do its role's part.
func (s *Server) readyz(r *http.Request) (any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
	defer cancel()
	st, err := s.readiness(ctx)
	if err != nil {
		return nil, err
	}
	if s.cluster == nil {
		return st, nil
	}
	cs, err := s.cluster.ClusterStatus(ctx)
	if err != nil {
		s.log.Warn("readiness check failed", "err", err)
		return nil, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "%v", err)
	}
	st.Cluster = &cs
	return st, nil
}

func (s *Server) readiness(ctx context.Context) (wire.Status, error) {
	if s.spool != nil {
		if reason, refusing := s.spool.Degraded(); refusing {
			return wire.Status{}, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "%s", reason)
		} else if reason != "" {
			return wire.Status{Status: "degraded", Reason: reason}, nil
		}
	}
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		if s.spool != nil {
			return wire.Status{Status: "degraded", Reason: "the store is not answering; ingest goes to the spool"}, nil
		}
		return wire.Status{}, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "store is not answering")
	}
	return wire.Status{Status: "ok"}, nil
}
