package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mcpgate/mcpgate/upstream/local"
)

// LocalUsers are the local_users: each a NAME[GROUPS]:PASSWORD spec, as
// --local-user and MCPGATE_LOCAL_USERS give them. The file may also give
// an account as a mapping (name, password or password_hash, groups),
// which is checked as it is read and kept as the spec it stands for: a
// name and groups never hold the spec's separators (local.ValidName,
// local.ValidGroup), and the password is everything after the first
// colon, so the spec says exactly what the mapping said. One form leaves
// the rest of the program one thing to read.
type LocalUsers []string

// localUserKeys are the keys of an account's mapping.
var localUserKeys = []string{"name", "password", "password_hash", "groups"}

// UnmarshalYAML implements yaml.Unmarshaler: a list of specs and
// mappings, mixed. Every problem is a *yaml.TypeError at the line and
// column of the value it is about, which the decoder collects and
// explain names by its key (local_users[1].groups[0]); never the
// password's text.
func (l *LocalUsers) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d column %d: must be a list", n.Line, n.Column)}}
	}
	var out LocalUsers
	var errs []string
	for _, item := range n.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			if item.ShortTag() == "!!null" {
				errs = append(errs, fmt.Sprintf("line %d column %d: %s", item.Line, item.Column, emptyItem))
				continue
			}
			if problem := specProblem(item.Value); problem != "" {
				errs = append(errs, fmt.Sprintf("line %d column %d: %s", item.Line, item.Column, problem))
			}
			out = append(out, item.Value)
		case yaml.MappingNode:
			spec, problems := localUserSpec(item)
			if len(problems) == 0 {
				out = append(out, spec)
			}
			errs = append(errs, problems...)
		default:
			errs = append(errs, fmt.Sprintf("line %d column %d: must be NAME[GROUPS]:PASSWORD or a mapping with name, password (or password_hash) and groups", item.Line, item.Column))
		}
	}
	if len(errs) > 0 {
		// The list keeps the value below it, as any value that cannot be
		// read: a list without the bad accounts would number the rest
		// wrongly, and start without them.
		return &yaml.TypeError{Errors: errs}
	}
	*l = out
	return nil
}

// specProblem checks a NAME[GROUPS]:PASSWORD spec as the local connector
// will parse it, in words that never quote the password: without a colon
// the whole spec may be one.
func specProblem(spec string) string {
	if !strings.Contains(spec, ":") {
		return fmt.Sprintf("%q must be NAME[GROUPS]:PASSWORD", redactUser(spec))
	}
	if _, _, _, err := local.ParseUserSpecGroups(spec); err != nil {
		return strings.TrimPrefix(err.Error(), "local: ")
	}
	return ""
}

// localUserSpec reads an account's mapping into its spec, or returns its
// problems, each at the node it is about.
func localUserSpec(m *yaml.Node) (spec string, problems []string) {
	at := func(n *yaml.Node, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d column %d: ", n.Line, n.Column)+fmt.Sprintf(format, args...))
	}
	fields := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case !slices.Contains(localUserKeys, k.Value) && strings.Contains(k.Value, ":"):
			// A spec written as a key ({alice:pw}): explain would name
			// the key, password and all (SEC-76).
			at(m, "%q is not a key of an account (name, password, password_hash, groups)", shown(k.Value))
		case !slices.Contains(localUserKeys, k.Value):
			// The decoder's own words, which explain turns into "unknown key".
			problems = append(problems, fmt.Sprintf("line %d: field %s not found in type config.LocalUser", k.Line, k.Value))
		case fields[k.Value] != nil:
			at(v, "given twice")
		default:
			fields[k.Value] = v
		}
	}
	name := scalar(fields["name"], at)
	switch {
	case fields["name"] == nil:
		at(m, "an account needs a name (name: alice)")
	case name != "" && !local.ValidName(name):
		at(fields["name"], "%q is not an account name: want 1-64 characters of A-Z a-z 0-9 . _ @ -", shown(name))
	}
	var groups []string
	if g := fields["groups"]; g != nil {
		if g.Kind != yaml.SequenceNode {
			at(g, "must be a list, like [admins, devs]")
		}
		for _, item := range g.Content {
			s := scalar(item, at)
			if item.Kind == yaml.ScalarNode && !local.ValidGroup(s) {
				at(item, "%q is not a group: want 1-128 characters of A-Z a-z 0-9 . _ @ - /", shown(s))
			}
			groups = append(groups, s)
		}
		if len(groups) > local.MaxGroups {
			at(g, "%d groups, more than %d", len(groups), local.MaxGroups)
		}
	}
	password, hash := scalar(fields["password"], at), scalar(fields["password_hash"], at)
	secret := fields["password"]
	switch {
	case fields["password"] != nil && fields["password_hash"] != nil:
		at(fields["password_hash"], "give password or password_hash, not both")
	case fields["password_hash"] != nil:
		// A hash given as one is stored as it is (local.SetUser).
		if !local.IsBcryptHash(hash) {
			at(fields["password_hash"], "is not a bcrypt hash ($2b$…, or $$2b$$… in the file, where $ starts a variable)")
		}
		password, secret = hash, fields["password_hash"]
	case fields["password"] != nil && local.IsBcryptHash(password):
		// The string form reads such a password as a hash; the mapping
		// has a key for hashes, so that what it says is what is meant.
		at(fields["password"], "looks like a bcrypt hash: give it as password_hash")
	case fields["password"] == nil:
		at(m, "an account needs a password or a password_hash")
	}
	if len(problems) > 0 {
		return "", problems
	}
	spec = name
	if len(groups) > 0 {
		spec += "[" + strings.Join(groups, ",") + "]"
	}
	spec += ":" + password
	if _, _, _, err := local.ParseUserSpecGroups(spec); err != nil {
		// What only the parser checks: the password's length, a hash's
		// cost. Its errors never quote the password.
		at(secret, "%s", strings.TrimPrefix(err.Error(), "local: "))
		return "", problems
	}
	return spec, nil
}

// shown is a name, group or key of an account's mapping as a problem
// quotes it: one with a colon is most likely a NAME:PASSWORD spec written
// where the mapping wants a name, and what follows the colon is cut
// (SEC-76).
func shown(v string) string {
	if name, _, ok := strings.Cut(v, ":"); ok {
		return name + ":***"
	}
	return v
}

// scalar is the text of a scalar node, or "" with a problem for a list or
// a mapping; "" for no node.
func scalar(n *yaml.Node, at func(*yaml.Node, string, ...any)) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		at(n, "must be a single value, not a list or a mapping")
		return ""
	}
	return n.Value
}
