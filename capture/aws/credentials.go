package aws

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/agenttrail/agenttrail/capture"
)

// Credential is one access key the proxy issued to an agent: the secret the
// agent signs with, who it is, and the real AWS credentials the proxy signs
// its requests with instead. Agents hold only the proxy-issued pair.
//
// Events record the key id a request was signed with in
// metadata.aws.access_key_id: a key id names a credential, it is not a
// secret, and it tells which key failed its signature. The secret is never
// seen by anything that records.
type Credential struct {
	// SecretAccessKey is the proxy-issued secret the agent signs with.
	SecretAccessKey string `json:"secret_access_key"`
	// Actor is who acts with this key; ID is required.
	Actor capture.Actor `json:"actor"`
	// SessionTags are recorded with every request made with this key, as
	// an STS session's tags would be.
	SessionTags map[string]string `json:"session_tags,omitempty"`
	// Upstream is the real credential requests are re-signed with.
	Upstream UpstreamCredential `json:"upstream"`
}

// UpstreamCredential is a real AWS credential. SessionToken is set for
// temporary credentials.
type UpstreamCredential struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	SessionToken    string `json:"session_token,omitempty"`
	// AccountID is the AWS account the credential belongs to, when known:
	// it completes resource ARNs (DynamoDB tables) and is the resource of
	// account-wide calls (ListBuckets, GetCallerIdentity).
	AccountID string `json:"account_id,omitempty"`
}

// LoadCredentials reads a JSON file mapping proxy-issued access key ids to
// their Credential:
//
//	{"PXCI0000000000000001": {
//	   "secret_access_key": "…", "actor": {"actor_id": "agent-ci", "org": "acme"},
//	   "session_tags": {"team": "payments"},
//	   "upstream": {"access_key_id": "AKIA…", "secret_access_key": "…", "account_id": "123456789012"}}}
func LoadCredentials(path string) (map[string]Credential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var m map[string]Credential
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse credentials %s: %w", path, err)
	}
	if err := checkCredentials(m); err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	return m, nil
}

func checkCredentials(m map[string]Credential) error {
	if len(m) == 0 {
		return fmt.Errorf("no credentials")
	}
	for id, c := range m {
		switch {
		case id == "":
			return fmt.Errorf("an empty access key id")
		case c.SecretAccessKey == "":
			return fmt.Errorf("%s: secret_access_key is empty", id)
		case c.Actor.ID == "":
			return fmt.Errorf("%s: actor.actor_id is empty", id)
		case c.Upstream.AccessKeyID == "" || c.Upstream.SecretAccessKey == "":
			return fmt.Errorf("%s: upstream access_key_id and secret_access_key are required", id)
		case c.Upstream.AccessKeyID == id:
			return fmt.Errorf("%s: the proxy-issued key must differ from the upstream key", id)
		}
	}
	return nil
}
