package llm

import (
	"time"
	"unicode/utf8"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// maxBodyRecord caps each recorded body (the request, the completion text)
// when bodies are recorded.
const maxBodyRecord = 64 << 10

// call is the state of one proxied request, filled in as the request and
// its response pass through and turned into one event at the end. It is
// owned by the goroutine serving the request.
type call struct {
	start    time.Time
	ep       endpoint
	actor    capture.Actor
	span     capture.Span
	reqModel string
	model    string // as the response names it: usually a dated snapshot
	stream   bool
	injected bool // the proxy asked for stream usage the client did not

	usage     agenttrail.LLM // token counters only
	usageSeen bool

	status      int
	done        bool   // a stream's terminal event arrived
	failed      bool   // the stream carried an error event
	clientGone  bool   // writing to the client failed
	cut         error  // reading from the upstream failed
	unreachable bool   // the upstream could not be reached: the proxy answered 502
	denied      bool   // the proxy refused the call: an unmapped credential
	errMsg      string // why the proxy answered itself

	// What budget enforcement needs: the request's size and output cap,
	// the generated text seen (for a call that reports no usage), and
	// the reservation (nil when budgets are off or the call is not
	// metered).
	reqBytes int
	maxOut   int64
	seenText int
	budget   *budgetCall

	keepBodies bool
	request    []byte
	completion []byte
	truncated  bool
}

// addCompletion appends generated text, up to maxBodyRecord bytes.
func (c *call) addCompletion(s string) {
	c.seenText += len(s)
	if !c.keepBodies || s == "" {
		return
	}
	room := maxBodyRecord - len(c.completion)
	if len(s) > room {
		s = truncateUTF8(s, room)
		c.truncated = true
	}
	c.completion = append(c.completion, s...)
}

// setModel keeps the first model a response names.
func (c *call) setModel(m string) {
	if c.model == "" {
		c.model = m
	}
}

// modelName is the model to record and price: the response's, else the
// request's.
func (c *call) modelName() string {
	if c.model != "" {
		return c.model
	}
	return c.reqModel
}

// truncateUTF8 returns s cut to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
