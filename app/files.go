package app

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/agenttrail/agenttrail/server"
)

// SignInURL returns a one-time sign-in link to the console of the server at
// base whose data directory is dataDir: a code for a session of role and
// org, in the URL's fragment, which browsers never send to a server.
func SignInURL(base, dataDir string, role server.Role, org, by string) (string, error) {
	return SignInURLFrom(base, server.NewTokenFile(filepath.Join(dataDir, TokensFile)), role, org, by)
}

// SignInURLFrom is SignInURL for a server whose tokens are tokens (Tokens).
func SignInURLFrom(base string, tokens *server.TokenFile, role server.Role, org, by string) (string, error) {
	code, err := tokens.CreateLogin(role, org, by, time.Now())
	if err != nil {
		return "", fmt.Errorf("create a sign-in code: %w", err)
	}
	return base + "/#login=" + code, nil
}

// openTokens opens the token store file (the data directory's, or on a
// cluster the store's shared one) and, on first start, creates an admin
// token for every org when it holds no live token, so a fresh server is
// usable and never open. The token goes to AdminTokenFile (mode 0600) in
// dataDir; the log says where, not what. It reports whether it created
// the admin token.
func openTokens(file *server.TokenFile, dataDir string, logger *slog.Logger) (*server.TokenAuth, bool, error) {
	created, err := ensureAdminToken(file, dataDir, logger)
	if err != nil {
		return nil, false, err
	}
	auth, err := server.NewTokenAuth(file, logger)
	return auth, created, err
}

func ensureAdminToken(file *server.TokenFile, dataDir string, logger *slog.Logger) (bool, error) {
	token, rec, err := file.CreateFirst("admin", server.RoleAdmin, server.AllOrgs, "", time.Now())
	if err != nil {
		return false, fmt.Errorf("create the first admin token: %w", err)
	}
	if token == "" {
		return false, nil
	}
	path := filepath.Join(dataDir, AdminTokenFile)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("write the first admin token: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return false, fmt.Errorf("write the first admin token: %w", err)
	}
	logger.Info("created an admin token for every org; local commands use it, others need it as AGENTTRAIL_TOKEN", "path", path, "name", rec.Name)
	return true, nil
}

// LoadCursorKey reads the cursor key in path, creating it (mode 0600) with
// a random key when it does not exist, so cursors survive restarts: a SIEM
// poller following next_cursor picks up where it left off.
func LoadCursorKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) != server.CursorKeySize {
			return nil, fmt.Errorf("cursor key %s: want %d bytes, found %d", path, server.CursorKeySize, len(key))
		}
		return key, nil
	}
	if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read cursor key: %w", err)
	}
	key = make([]byte, server.CursorKeySize)
	rand.Read(key)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cursor.key-*")
	if err != nil {
		return nil, fmt.Errorf("write cursor key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("write cursor key: %w", err)
	}
	return key, nil
}

// loopbackAddr reports whether a listen address is reachable only from this
// host: a loopback IP or localhost. An empty host listens everywhere.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
