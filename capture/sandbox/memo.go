package sandbox

import (
	"container/list"
	"strings"
	"sync"
)

// container is what the proxy learned about a container when it was
// created through it.
type container struct {
	id    string
	image string
	name  string
}

// execInstance is an exec instance created through the proxy: exec start
// names only the exec id, so the container and command are remembered here.
type execInstance struct {
	container string // the container as the exec create request named it
	command   string
}

// memo remembers containers and exec instances between the requests that
// create them and later ones that name them. It holds at most max of each,
// forgetting the oldest first, so a long-running proxy stays bounded. It is
// safe for concurrent use.
type memo struct {
	mu     sync.Mutex
	max    int
	order  *list.List               // of *container, oldest first
	byID   map[string]*list.Element // full container id
	byName map[string]*list.Element // name without the leading "/"
	execs  map[string]*list.Element // exec id → element of execQ
	execQ  *list.List               // of *execEntry, oldest first
}

type execEntry struct {
	id string
	x  execInstance
}

func newMemo(max int) *memo {
	return &memo{
		max: max, order: list.New(), execQ: list.New(),
		byID: map[string]*list.Element{}, byName: map[string]*list.Element{},
		execs: map[string]*list.Element{},
	}
}

// addContainer remembers c, replacing what was known under its id or name.
func (m *memo) addContainer(c container) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.byID[c.id]; ok {
		m.drop(el)
	}
	if el, ok := m.byName[c.name]; ok && c.name != "" {
		m.drop(el)
	}
	el := m.order.PushBack(&c)
	m.byID[c.id] = el
	if c.name != "" {
		m.byName[c.name] = el
	}
	for m.order.Len() > m.max {
		m.drop(m.order.Front())
	}
}

func (m *memo) drop(el *list.Element) {
	c := m.order.Remove(el).(*container)
	delete(m.byID, c.id)
	if c.name != "" && m.byName[c.name] == el {
		delete(m.byName, c.name)
	}
}

// lookup finds the container ref names: a full id, a name (with or without
// the leading "/"), or an unambiguous id prefix, as the Engine accepts.
func (m *memo) lookup(ref string) (container, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el := m.find(ref); el != nil {
		return *el.Value.(*container), true
	}
	return container{}, false
}

func (m *memo) find(ref string) *list.Element {
	if ref == "" {
		return nil
	}
	if el, ok := m.byID[ref]; ok {
		return el
	}
	if el, ok := m.byName[strings.TrimPrefix(ref, "/")]; ok {
		return el
	}
	if !isHex(ref) {
		return nil
	}
	var found *list.Element
	for id, el := range m.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil // ambiguous, as the Engine would say
			}
			found = el
		}
	}
	return found
}

// removeContainer forgets the container ref names.
func (m *memo) removeContainer(ref string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el := m.find(ref); el != nil {
		m.drop(el)
	}
}

// renameContainer records that the container ref names is now called name.
func (m *memo) renameContainer(ref, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el := m.find(ref)
	if el == nil {
		return
	}
	c := el.Value.(*container)
	if m.byName[c.name] == el {
		delete(m.byName, c.name)
	}
	c.name = strings.TrimPrefix(name, "/")
	if c.name != "" {
		m.byName[c.name] = el
	}
}

// addExec remembers exec instance id.
func (m *memo) addExec(id string, x execInstance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.execs[id]; ok {
		m.execQ.Remove(el)
	}
	m.execs[id] = m.execQ.PushBack(&execEntry{id: id, x: x})
	for m.execQ.Len() > m.max {
		delete(m.execs, m.execQ.Remove(m.execQ.Front()).(*execEntry).id)
	}
}

// exec returns exec instance id.
func (m *memo) exec(id string) (execInstance, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.execs[id]; ok {
		return el.Value.(*execEntry).x, true
	}
	return execInstance{}, false
}

// takeExec forgets exec instance id: an exec instance starts only once.
func (m *memo) takeExec(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.execs[id]; ok {
		m.execQ.Remove(el)
		delete(m.execs, id)
	}
}

func isHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}
