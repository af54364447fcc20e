package config

import (
	"bytes"
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// loadFile decodes the YAML file at path into cfg. Every value it cannot
// decode is reported by its key (its path, in a list) and line, and left
// as it was; the rest is set. ok is false when the file gives nothing to
// check: it cannot be read, is not YAML, or names a variable that is not
// set.
func loadFile(cfg *Config, path string, getenv func(string) string) (errs []error, ok bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return []error{fmt.Errorf("config file: %w", err)}, false
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return []error{fmt.Errorf("config file %s: %w", path, err)}, false
	}
	cfg.fileSecrets = writtenSecrets(fileKeys(&doc, ""))
	if errs := expandEnv(&doc, getenv); len(errs) > 0 {
		for i, e := range errs {
			errs[i] = fmt.Errorf("config file %s: %w", path, e)
		}
		return errs, false
	}
	if doc.Kind == 0 {
		return nil, true // empty, or comments alone
	}
	if top := doc.Content[0]; top.Kind == yaml.MappingNode {
		for i := 0; i < len(top.Content); i += 2 {
			cfg.given[top.Content[i].Value] = true
		}
	}
	msgs, err := decodeFile(cfg, raw, &doc)
	if err != nil {
		return []error{fmt.Errorf("config file %s: %w", path, err)}, false
	}
	// The decoder goes on past a *yaml.TypeError (an unknown key, a type
	// mismatch, a Duration, Limit or Count it refused) and lists them all, each
	// by line only; doc tells which key that line holds.
	keys := fileKeys(&doc, "")
	for _, k := range keys {
		// A list's empty item (- with nothing after it, null, ~) decoded
		// to nothing, or to an empty value, and went unsaid. LocalUsers
		// says so itself.
		if k.name == "" && k.value.Kind == yaml.ScalarNode && k.value.ShortTag() == "!!null" && !strings.HasPrefix(k.path, "local_users[") {
			errs = append(errs, fmt.Errorf("%s (%s, line %d): %s", k.path, path, k.line, emptyItem))
		}
	}
	for _, msg := range msgs {
		errs = append(errs, keys.explain(path, msg))
	}
	return errs, true
}

// decodeFile decodes doc, the file's tree with its variables expanded,
// into cfg, and returns the decoder's messages, in the order of their
// lines. yaml.v3 refuses unknown keys only when it decodes text
// (Decoder.KnownFields), never a yaml.Node: they are found by decoding
// raw, the file as written, into a Config thrown away, since expanding
// changes no key and no line.
func decodeFile(cfg *Config, raw []byte, doc *yaml.Node) ([]string, error) {
	var msgs []string
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var te *yaml.TypeError
	switch err := dec.Decode(new(Config)); {
	case errors.As(err, &te):
		msgs = slices.DeleteFunc(te.Errors, func(m string) bool { return !unknownKey(m) })
	case err != nil:
		return nil, err
	}
	switch err := doc.Decode(cfg); {
	case errors.As(err, &te):
		// LocalUsers reports its mappings' unknown keys itself, in both
		// decodings: they are the first's.
		msgs = append(msgs, slices.DeleteFunc(te.Errors, unknownKey)...)
	case err != nil:
		return nil, err
	}
	slices.SortStableFunc(msgs, func(a, b string) int { return cmp.Compare(lineOf(a), lineOf(b)) })
	return msgs, nil
}

// unknownKey reports whether msg, the decoder's, is about an unknown key.
func unknownKey(msg string) bool {
	m := atLine.FindStringSubmatch(msg)
	return m != nil && notFound.MatchString(m[3])
}

// lineOf is the line a message of the decoder is about.
func lineOf(msg string) int {
	m := atLine.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// envRef is what a $ may begin in a configuration file: $$, ${NAME} or
// $NAME.
var envRef = regexp.MustCompile(`\$(\$|\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)?`)

// expandEnv replaces $VAR and ${VAR} in the values of the file's tree n
// with the environment's values, and $$ with a literal $ (bcrypt hashes
// need it). It runs once YAML has read the file, so that a variable's
// value is taken as it is, never read as YAML: a line break, a " #" or a
// quote in it stays in the value, and adds no key (SEC-172). Keys and
// comments are not expanded. A variable that is unset or empty, or a $
// that begins none of these (a password's "$1"), is an error naming its
// line: an empty value there would pass for the setting, a password
// silently shorter than written (SEC-140).
func expandEnv(n *yaml.Node, getenv func(string) string) []error {
	var errs []error
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "$") {
		n.Value, errs = expand(n.Value, n.Line, getenv)
		if n.Style == 0 {
			n.Tag = "" // plain: typed by its new value, as if written there (max_groups: ${N})
			if slices.Contains([]string{"~", "null", "Null", "NULL"}, n.Value) {
				// Not nothing, which an empty variable is refused for
				// being (SEC-140): a secret that reads "null" stays one.
				n.Tag = "!!str"
			}
		}
	}
	for i, c := range n.Content {
		if n.Kind != yaml.MappingNode || i%2 == 1 { // a key is not expanded
			errs = append(errs, expandEnv(c, getenv)...)
		}
	}
	return errs
}

// expand is expandEnv's work on one value, at line of the file.
func expand(text string, line int, getenv func(string) string) (string, []error) {
	var errs []error
	var b strings.Builder
	last := 0
	for _, m := range envRef.FindAllStringIndex(text, -1) {
		b.WriteString(text[last:m[0]])
		last = m[1]
		ref := text[m[0]:m[1]]
		switch name := strings.Trim(ref[1:], "{}"); {
		case ref == "$$":
			b.WriteString("$")
		case name == "":
			errs = append(errs, fmt.Errorf("line %d: a $ that names no variable: write $$ for a literal $, or ${NAME}", line))
		default:
			v := getenv(name)
			if v == "" {
				errs = append(errs, fmt.Errorf("line %d: $%s is not set (or empty) in the environment: set it, or write $$ for a literal $", line, name))
			}
			b.WriteString(v)
		}
	}
	b.WriteString(text[last:])
	return b.String(), errs
}

const emptyItem = "an empty item: give its value, or remove it"

// writtenSecrets lists the keys of the file, before its variables are
// expanded, whose value is a secret written there: a client secret, a
// local account's password (not its bcrypt hash), a store DSN's password.
// One given through a $VARIABLE is not.
func writtenSecrets(keys keyIndex) []string {
	var out []string
	for _, k := range keys {
		if k.value.Kind != yaml.ScalarNode || k.valueText == "" || namesVariable(k.valueText) {
			continue
		}
		value := strings.ReplaceAll(k.valueText, "$$", "$") // as expanded
		inLocalUsers := strings.HasPrefix(k.path, "local_users[")
		switch {
		case slices.Contains([]string{"github_client_secret", "oidc_client_secret", "google_client_secret"}, k.path),
			strings.HasPrefix(k.path, "oidc_providers[") && k.name == "client_secret",
			strings.HasPrefix(k.path, "clients[") && k.name == "secret",
			inLocalUsers && k.name == "password",
			inLocalUsers && k.name == "" && clearPassword(value), // NAME:PASSWORD
			k.path == "store" && storePassword(value):
			out = append(out, k.path)
		}
	}
	return out
}

// namesVariable reports whether text, a value of the file, takes any of
// its text from the environment ($NAME or ${NAME}; $$ is a literal $).
func namesVariable(text string) bool {
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		if m[1] != "" && m[1] != "$" {
			return true
		}
	}
	return false
}

// SecretsInFile names the keys of the configuration file that hold a
// secret as written there, for serve to warn when others may read the
// file (SEC-198), and the file.
func (c *Config) SecretsInFile() (file string, keys []string) { return c.file, c.fileSecrets }

// fileKey is a key of the file, where it and its value are.
type fileKey struct {
	path      string // like resources[0].stdio
	name      string // the key itself: stdio; "" for an item of a list
	line      int    // the key's, or the item's
	value     *yaml.Node
	valueText string // a scalar value's text
}

type keyIndex []fileKey

// fileKeys lists the keys under n, in the order of the file.
func fileKeys(n *yaml.Node, prefix string) keyIndex {
	var out keyIndex
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			out = append(out, fileKeys(c, prefix)...)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			path := fmt.Sprintf("%s[%d]", prefix, i)
			out = append(out, fileKey{path: path, line: c.Line, value: c, valueText: c.Value})
			out = append(out, fileKeys(c, path)...)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			out = append(out, fileKey{path: path, name: k.Value, line: k.Line, value: v, valueText: v.Value})
			out = append(out, fileKeys(v, path)...)
		}
	}
	return out
}

var (
	// The decoder's messages (go.yaml.in/yaml/v3 decode.go), and the one
	// of yamlText, which adds the column.
	atLine       = regexp.MustCompile(`^line (\d+)(?: column (\d+))?: (.*)$`)
	notFound     = regexp.MustCompile("^field (.+) not found in type (.+)$")
	cannotDecode = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
)

// explain turns a message of the decoder into one that names the key and
// says what is wrong in the words the flags and variables use.
func (keys keyIndex) explain(path, msg string) error {
	m := atLine.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Errorf("config file %s: %s", path, msg)
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	what := m[3]
	var k *fileKey
	if nf := notFound.FindStringSubmatch(what); nf != nil {
		k = keys.find(func(k *fileKey) bool { return k.line == line && k.name == nf[1] })
		what = "unknown key" + didYouMean(nf[1], fileKeyNames[nf[2]])
	} else if cd := cannotDecode.FindStringSubmatch(what); cd != nil {
		kind := map[string]yaml.Kind{"map": yaml.MappingNode, "seq": yaml.SequenceNode}[cd[1]]
		k = keys.find(func(k *fileKey) bool {
			return k.value.Line == line && (kind == 0 && k.value.Kind == yaml.ScalarNode && k.valueText == cd[2] || k.value.Kind == kind)
		})
		what = mismatch(kind, cd[2], cd[3])
	} else if col > 0 {
		k = keys.find(func(k *fileKey) bool { return k.value.Line == line && k.value.Column == col })
	} else {
		k = keys.find(func(k *fileKey) bool { return k.line == line })
	}
	if k == nil {
		return fmt.Errorf("config file %s, line %d: %s", path, line, what)
	}
	return fmt.Errorf("%s (%s, line %d): %s", k.path, path, line, what)
}

// mismatch says what is wrong with a value of the file that is not of
// its setting's type (typ, as reflect writes it), in the words the flags
// and variables use; kind is 0 for a scalar, whose text is text.
func mismatch(kind yaml.Kind, text, typ string) string {
	switch {
	case strings.HasPrefix(typ, "[]"):
		return "must be a list"
	case kind != 0 && (typ == "string" || typ == "bool"):
		return "must be a single value, not a list or a mapping"
	case typ == "bool":
		return fmt.Sprintf("%q is not true or false", text)
	case strings.HasPrefix(typ, "map[") || strings.Contains(typ, "."):
		return "must be a mapping"
	}
	return "must be a " + typ
}

// find returns the last key that matches: the innermost, of a key and
// the keys of its value on one line.
func (keys keyIndex) find(match func(*fileKey) bool) *fileKey {
	for i := len(keys) - 1; i >= 0; i-- {
		if match(&keys[i]) {
			return &keys[i]
		}
	}
	return nil
}

// yamlText decodes a scalar of the file with u's UnmarshalText. A value
// it refuses is a *yaml.TypeError, which the decoder collects before it
// goes on (any other error stops it), so that every bad value of a file
// is reported; the line and column let explain name the key.
func yamlText(n *yaml.Node, u encoding.TextUnmarshaler) error {
	what := "must be a single value, not a list or a mapping"
	if n.Kind == yaml.ScalarNode {
		err := u.UnmarshalText([]byte(n.Value))
		if err == nil {
			return nil
		}
		what = err.Error()
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d column %d: %s", n.Line, n.Column, what)}}
}

func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return yamlText(n, d) }

func (n *Limit) UnmarshalYAML(node *yaml.Node) error { return yamlText(node, n) }

func (n *Count) UnmarshalYAML(node *yaml.Node) error { return yamlText(node, n) }
