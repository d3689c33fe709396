package server

import (
	"context"
	"net/http"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Status is the answer of /livez and /readyz when they pass.
type Status struct {
	Status string `json:"status"`
}

// pingTimeout bounds the store check of /readyz: a store that takes longer
// is not ready, whatever it would answer eventually.
const pingTimeout = 2 * time.Second

// livez is GET /livez: the process is up and serving.
func (s *Server) livez(*http.Request) (any, error) {
	return Status{Status: "ok"}, nil
}

// readyz is GET /readyz: the store answers.
func (s *Server) readyz(r *http.Request) (any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		return nil, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "store is not answering")
	}
	return Status{Status: "ok"}, nil
}
