package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The OCSF 1.8.0 definitions in testdata/ocsf-1.8.0 (see its README) are
// the schema's own: dictionary.json (attribute and type definitions),
// categories.json, and the event classes, objects and profiles the ocsf
// format uses, with the parents they extend. ocsfSchema validates an event
// against them as the schema defines it: every attribute defined by the
// class (following extends) or by a profile the event lists, required
// attributes present, types as dictionary.json has them (objects
// recursively, arrays, 32-bit integer_t, port_t's range, regexes), enum
// values declared, siblings naming their enum value, object constraints
// (at_least_one, just_one), and the classification (class_uid,
// category_uid, type_uid) consistent.

type ocsfDef struct {
	Caption     string                     `json:"caption"`
	Name        string                     `json:"name"`
	UID         int                        `json:"uid"`
	Category    string                     `json:"category"`
	Extends     string                     `json:"extends"`
	Profiles    []string                   `json:"profiles"`
	Constraints map[string][]string        `json:"constraints"`
	Attributes  map[string]json.RawMessage `json:"attributes"`
}

type ocsfAttr struct {
	Caption     string                              `json:"caption"`
	Requirement string                              `json:"requirement"`
	Type        string                              `json:"type"`
	IsArray     bool                                `json:"is_array"`
	Sibling     string                              `json:"sibling"`
	Enum        map[string]struct{ Caption string } `json:"enum"`
	Range       []float64                           `json:"range"`
	Regex       string                              `json:"regex"`
	MaxLen      int                                 `json:"max_len"`
}

// merge lays o over a: set fields win, enum values add up.
func (a ocsfAttr) merge(o ocsfAttr) ocsfAttr {
	if o.Caption != "" {
		a.Caption = o.Caption
	}
	if o.Requirement != "" {
		a.Requirement = o.Requirement
	}
	if o.Type != "" {
		a.Type = o.Type
	}
	a.IsArray = a.IsArray || o.IsArray
	if o.Sibling != "" {
		a.Sibling = o.Sibling
	}
	if len(o.Enum) > 0 {
		e := maps.Clone(a.Enum)
		if e == nil {
			e = map[string]struct{ Caption string }{}
		}
		maps.Copy(e, o.Enum)
		a.Enum = e
	}
	return a
}

// ocsfResolved is a class or object with its extends chain applied: its
// own attributes, and those each profile it includes adds.
type ocsfResolved struct {
	def         ocsfDef // the most derived definition
	attrs       map[string]ocsfAttr
	profile     map[string]map[string]ocsfAttr
	profiles    []string
	constraints map[string][]string
	categoryUID int
	category    string
}

type ocsfSchema struct {
	dict, types map[string]ocsfAttr
	events      map[string]ocsfDef // by name
	objects     map[string]ocsfDef
	profiles    map[string]ocsfDef
	categories  map[string]struct {
		Caption string
		UID     int
	}
	regexes  map[string]*regexp.Regexp
	resolved map[string]*ocsfResolved
}

func loadOCSFSchema(t *testing.T) *ocsfSchema {
	t.Helper()
	root := filepath.Join("testdata", "ocsf-"+OCSFVersion)
	s := &ocsfSchema{events: map[string]ocsfDef{}, objects: map[string]ocsfDef{}, profiles: map[string]ocsfDef{}, regexes: map[string]*regexp.Regexp{}, resolved: map[string]*ocsfResolved{}}
	read := func(p string, v any) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	var dict struct {
		Attributes map[string]ocsfAttr `json:"attributes"`
		Types      struct {
			Attributes map[string]ocsfAttr `json:"attributes"`
		} `json:"types"`
	}
	read(filepath.Join(root, "dictionary.json"), &dict)
	s.dict, s.types = dict.Attributes, dict.Types.Attributes
	var cats struct {
		Attributes map[string]struct {
			Caption string
			UID     int
		} `json:"attributes"`
	}
	read(filepath.Join(root, "categories.json"), &cats)
	s.categories = cats.Attributes
	for dir, into := range map[string]map[string]ocsfDef{"events": s.events, "objects": s.objects, "profiles": s.profiles} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			var def ocsfDef
			read(p, &def)
			into[def.Name] = def
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(s.dict) == 0 || len(s.types) == 0 || len(s.events) == 0 || len(s.objects) == 0 {
		t.Fatalf("the OCSF test data in %s is incomplete", root)
	}
	return s
}

// resolve applies the extends chain of def (in defs) and its includes.
func (s *ocsfSchema) resolve(defs map[string]ocsfDef, name string) (*ocsfResolved, error) {
	key := fmt.Sprintf("%p/%s", defs, name)
	if r, ok := s.resolved[key]; ok {
		return r, nil
	}
	r, err := s.resolveOnce(defs, name)
	if err == nil {
		s.resolved[key] = r
	}
	return r, err
}

func (s *ocsfSchema) resolveOnce(defs map[string]ocsfDef, name string) (*ocsfResolved, error) {
	var chain []ocsfDef
	for n := name; n != ""; {
		d, ok := defs[n]
		if !ok {
			return nil, fmt.Errorf("%q is not in the OCSF test data", n)
		}
		chain = append([]ocsfDef{d}, chain...)
		n = d.Extends
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("no definition named %q", name)
	}
	r := &ocsfResolved{def: chain[len(chain)-1], attrs: map[string]ocsfAttr{}, profile: map[string]map[string]ocsfAttr{}, constraints: map[string][]string{}}
	for _, d := range chain {
		for k, raw := range d.Attributes {
			if k == "$include" {
				var incs []string
				if err := json.Unmarshal(raw, &incs); err != nil {
					return nil, fmt.Errorf("%s: $include: %v", d.Name, err)
				}
				for _, inc := range incs {
					p := strings.TrimSuffix(strings.TrimPrefix(inc, "profiles/"), ".json")
					pd, ok := s.profiles[p]
					if !ok {
						continue // a profile the ocsf format never lists; listing it fails below
					}
					m := map[string]ocsfAttr{}
					for pk, praw := range pd.Attributes {
						var a ocsfAttr
						if err := json.Unmarshal(praw, &a); err != nil {
							return nil, fmt.Errorf("profile %s: %s: %v", p, pk, err)
						}
						dict, ok := s.dict[pk]
						if !ok {
							return nil, fmt.Errorf("profile %s: attribute %s is not in dictionary.json", p, pk)
						}
						m[pk] = dict.merge(a)
					}
					r.profile[p] = m
				}
				continue
			}
			var a ocsfAttr
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("%s: %s: %v", d.Name, k, err)
			}
			base, ok := r.attrs[k]
			if !ok {
				dict, ok := s.dict[k]
				if !ok {
					return nil, fmt.Errorf("%s: attribute %s is not in dictionary.json", d.Name, k)
				}
				base = dict
			}
			r.attrs[k] = base.merge(a)
		}
		r.profiles = append(r.profiles, d.Profiles...)
		maps.Copy(r.constraints, d.Constraints)
		if d.Category != "" && d.Category != "other" { // base_event's: uncategorized
			c, ok := s.categories[d.Category]
			if !ok {
				return nil, fmt.Errorf("%s: category %q is not in categories.json", d.Name, d.Category)
			}
			r.categoryUID, r.category = c.UID, c.Caption
		}
	}
	// A profile's attribute the class defines itself is the class's.
	for _, m := range r.profile {
		for k := range m {
			if _, own := r.attrs[k]; own {
				delete(m, k)
			}
		}
	}
	return r, nil
}

// validate returns every way line, one OCSF event, departs from the schema.
func (s *ocsfSchema) validate(line []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		return []string{"not a JSON object: " + err.Error()}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	classUID, ok1 := intOf(ev["class_uid"])
	categoryUID, ok2 := intOf(ev["category_uid"])
	activityID, ok3 := intOf(ev["activity_id"])
	typeUID, ok4 := intOf(ev["type_uid"])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return []string{"class_uid, category_uid, activity_id or type_uid missing or not an integer"}
	}
	var class *ocsfResolved
	for name := range s.events {
		r, err := s.resolve(s.events, name)
		if err != nil {
			return []string{err.Error()}
		}
		if r.def.UID != 0 && int64(r.categoryUID*1000+r.def.UID) == classUID {
			class = r
		}
	}
	if class == nil {
		return []string{fmt.Sprintf("class_uid %d is no class of the test data", classUID)}
	}
	if categoryUID != int64(class.categoryUID) {
		bad("category_uid %d, want %d for class %d", categoryUID, class.categoryUID, classUID)
	}
	if typeUID != classUID*100+activityID {
		bad("type_uid %d, want class_uid*100+activity_id = %d", typeUID, classUID*100+activityID)
	}
	if ev["class_name"] != class.def.Caption || ev["category_name"] != class.category {
		bad("class_name %v / category_name %v, want %q / %q", ev["class_name"], ev["category_name"], class.def.Caption, class.category)
	}
	if act, ok := class.attrs["activity_id"].Enum[strconv.FormatInt(activityID, 10)]; ok && activityID != 99 {
		if want := class.def.Caption + ": " + act.Caption; ev["type_name"] != want {
			bad("type_name %v, want %q", ev["type_name"], want)
		}
	}
	// The profiles the event lists: each must be one its class has.
	active := map[string]bool{}
	if md, ok := ev["metadata"].(map[string]any); ok {
		if ps, ok := md["profiles"].([]any); ok {
			for _, p := range ps {
				name, _ := p.(string)
				if !slices.Contains(class.profiles, name) {
					bad("metadata.profiles lists %q, which class %s does not have (%v)", name, class.def.Name, class.profiles)
				}
				if _, ok := s.profiles[name]; !ok {
					bad("metadata.profiles lists %q, which is not in the test data", name)
				}
				active[name] = true
			}
		}
	}
	s.check(class, ev, active, "", bad, "class_uid", "category_uid", "type_uid")
	return problems
}

// check validates obj against r: attributes defined, required ones
// present, each value of its type, constraints held. skipEnum names the
// attributes whose enum the caller checked itself.
func (s *ocsfSchema) check(r *ocsfResolved, obj map[string]any, active map[string]bool, at string, bad func(string, ...any), skipEnum ...string) {
	attrs := maps.Clone(r.attrs)
	for p, m := range r.profile {
		if active[p] {
			maps.Copy(attrs, m)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if _, ok := obj[k]; !ok && attrs[k].Requirement == "required" {
			bad("%s%s: required attribute missing (%s)", at, k, r.def.Name)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		a, ok := attrs[k]
		if !ok {
			bad("%s%s: not an attribute of %s (or of its active profiles)", at, k, r.def.Name)
			continue
		}
		s.checkValue(a, obj[k], obj, active, at+k, bad, !slices.Contains(skipEnum, k))
	}
	for kind, names := range r.constraints {
		n := 0
		for _, name := range names {
			if _, ok := obj[name]; ok {
				n++
			}
		}
		switch {
		case kind == "at_least_one" && n == 0:
			bad("%s: %s needs at least one of %v", strings.TrimSuffix(at, "."), r.def.Name, names)
		case kind == "just_one" && n != 1:
			bad("%s: %s needs exactly one of %v", strings.TrimSuffix(at, "."), r.def.Name, names)
		}
	}
}

func (s *ocsfSchema) checkValue(a ocsfAttr, v any, parent map[string]any, active map[string]bool, at string, bad func(string, ...any), enum bool) {
	if v == nil {
		bad("%s: null", at)
		return
	}
	if a.IsArray {
		arr, ok := v.([]any)
		if !ok {
			bad("%s: %T, want an array", at, v)
			return
		}
		el := a
		el.IsArray = false
		for i, x := range arr {
			s.checkValue(el, x, parent, active, fmt.Sprintf("%s[%d]", at, i), bad, enum)
		}
		return
	}
	switch {
	case a.Type == "object": // unmapped and the like: any object
		if _, ok := v.(map[string]any); !ok {
			bad("%s: %T, want an object", at, v)
		}
		return
	case strings.HasSuffix(a.Type, "_t"):
		s.checkScalar(a.Type, v, at, bad)
	default:
		o, ok := v.(map[string]any)
		if !ok {
			bad("%s: %T, want a %s object", at, v, a.Type)
			return
		}
		r, err := s.resolve(s.objects, a.Type)
		if err != nil {
			bad("%s: %v", at, err)
			return
		}
		s.check(r, o, active, at+".", bad)
		return
	}
	if enum && len(a.Enum) > 0 {
		n, ok := intOf(v)
		key := strconv.FormatInt(n, 10)
		if str, isString := v.(string); isString { // http_method's enum is of strings
			key, ok, n = str, true, 0
		}
		e, declared := a.Enum[key]
		if !ok || !declared {
			bad("%s: %v is not a declared value (%v)", at, v, slices.Sorted(maps.Keys(a.Enum)))
			return
		}
		if sib, ok := parent[a.Sibling]; ok && a.Sibling != "" && n != 99 && sib != e.Caption {
			bad("%s: %s is %v, want %q for %d", at, a.Sibling, sib, e.Caption, n)
		}
	}
}

// checkScalar checks v against a dictionary type, following the type's
// own base type (timestamp_t is a long_t, port_t an integer_t).
func (s *ocsfSchema) checkScalar(typ string, v any, at string, bad func(string, ...any)) {
	t, ok := s.types[typ]
	if !ok {
		bad("%s: type %s is not in dictionary.json", at, typ)
		return
	}
	if t.Type != "" && t.Type != typ {
		s.checkScalar(t.Type, v, at, bad)
	}
	switch typ {
	case "string_t":
		if _, ok := v.(string); !ok {
			bad("%s: %T, want a string", at, v)
		}
	case "integer_t", "long_t":
		n, ok := intOf(v)
		if !ok || typ == "integer_t" && (n < math.MinInt32 || n > math.MaxInt32) {
			bad("%s: %v is not a %s", at, v, typ)
		}
	case "float_t":
		if _, ok := v.(json.Number); !ok {
			bad("%s: %T, want a number", at, v)
		}
	case "boolean_t":
		if _, ok := v.(bool); !ok {
			bad("%s: %T, want a boolean", at, v)
		}
	}
	if len(t.Range) == 2 {
		if n, ok := intOf(v); ok && (float64(n) < t.Range[0] || float64(n) > t.Range[1]) {
			bad("%s: %d is out of %s's range %v", at, n, typ, t.Range)
		}
	}
	if str, ok := v.(string); ok {
		if t.MaxLen > 0 && len(str) > t.MaxLen {
			bad("%s: longer than %s's %d", at, typ, t.MaxLen)
		}
		if t.Regex != "" {
			re, ok := s.regexes[typ]
			if !ok {
				var err error
				if re, err = regexp.Compile(t.Regex); err != nil {
					bad("%s: %s's regex: %v", at, typ, err)
					return
				}
				s.regexes[typ] = re
			}
			if !re.MatchString(str) {
				bad("%s: %q does not match %s", at, str, typ)
			}
		}
	}
}

// intOf returns v as an integer when it is a JSON integer that fits int64.
func intOf(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	return i, err == nil
}
