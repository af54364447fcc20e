package config

import (
	"bytes"
	"encoding"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/upstream/local"
)

// setting is one row of the table that Config's tags declare.
type setting struct {
	key   string   // file key, e.g. "data_dir"
	flag  string   // flag name without dashes, e.g. "data-dir"
	env   []string // environment variables, the MCPGATE_ one first
	arg   string   // the flag's argument in the help, e.g. "DIR"
	def   string   // default, written as a user would; "" for none
	help  string
	index []int // the field, through inline structs (reflect.Value.FieldByIndex)
	typ   reflect.Type
}

// settings is the table, read once from Config's tags.
var settings = tableOf(reflect.TypeFor[Config](), nil)

func tableOf(t reflect.Type, prefix []int) []setting {
	var out []setting
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue // not a setting: what Load records
		}
		key, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		index := append(append([]int(nil), prefix...), i)
		if opts == "inline" {
			out = append(out, tableOf(f.Type, index)...)
			continue
		}
		s := setting{key: key, flag: strings.ReplaceAll(key, "_", "-"), env: []string{"MCPGATE_" + strings.ToUpper(key)},
			arg: f.Tag.Get("arg"), def: f.Tag.Get("default"), help: f.Tag.Get("help"), index: index, typ: f.Type}
		if name := f.Tag.Get("flag"); name != "" {
			s.flag = name
		}
		if alias := f.Tag.Get("env"); alias != "" {
			s.env = append(s.env, alias)
		}
		out = append(out, s)
	}
	return out
}

// fileOnly reports whether s is too structured for a flag or a variable:
// the resources list, clients, maps and nested structs.
func (s *setting) fileOnly() bool {
	switch s.typ {
	case reflect.TypeFor[string](), reflect.TypeFor[[]string](), reflect.TypeFor[LocalUsers](), reflect.TypeFor[bool](), reflect.TypeFor[Count](), reflect.TypeFor[Duration](), reflect.TypeFor[Limit]():
		return false
	}
	return true
}

// backendKeys lists the top level's backend settings that are set, by
// file key.
func (c *Config) backendKeys() []string {
	backend, _ := reflect.TypeFor[Config]().FieldByName("Backend")
	var out []string
	for i := range settings {
		s := &settings[i]
		if len(s.index) == 2 && s.index[0] == backend.Index[0] && !s.field(c).IsZero() {
			out = append(out, s.key)
		}
	}
	return out
}

// scopeKeys lists the top level's scope settings that were given, by file
// key: scopes has a default, which a resources list does not refuse.
func (c *Config) scopeKeys() []string {
	var out []string
	for _, key := range []string{"scopes", "optional_scopes", "scope_implies"} {
		if c.given[key] {
			out = append(out, key)
		}
	}
	return out
}

// field is s's field in c.
func (s *setting) field(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(s.index)
}

// set parses text into s's field of c. A list gets text split at commas
// (a variable), or, with add, text appended as one item (a flag).
func (s *setting) set(c *Config, text string, add bool) error {
	switch p := s.field(c).Addr().Interface().(type) {
	case *string:
		*p = text
	case *LocalUsers:
		if !add && strings.Contains(text, ",") && slices.ContainsFunc(splitList(text), notHashed) {
			// alice:correct,horse:battery would make the account horse
			// of what was meant as one password (SEC-173).
			return errors.New("its commas separate accounts, but a password may hold one too, so with a comma in it every password must be a bcrypt hash ($2b$…, which holds none): " +
				"give accounts with a clear password one per --local-user, or in local_users of the configuration file (groups in this variable are separated by +)")
		}
		setList((*[]string)(p), text, add)
	case *[]string:
		setList(p, text, add)
	case *bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("%q is not true or false", text)
		}
		*p = b
	case encoding.TextUnmarshaler:
		return p.UnmarshalText([]byte(text))
	default:
		return fmt.Errorf("%s is set in the configuration file only", s.key)
	}
	return nil
}

func setList(p *[]string, text string, add bool) {
	if add {
		*p = append(*p, text)
	} else {
		*p = splitList(text)
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Defaults returns the configuration of `mcpgate serve` with no arguments.
func Defaults() Config {
	var c Config
	for _, s := range settings {
		if s.def != "" {
			if err := s.set(&c, s.def, false); err != nil {
				panic("config: default of " + s.key + ": " + err.Error())
			}
		}
	}
	return c
}

// Load builds the configuration from args (after "serve") and the
// environment lookup function: defaults, then the file named by --config
// or MCPGATE_CONFIG, then MCPGATE_* variables, then flags. It reads every
// source whole and reports every value it could not read, each by its
// flag, variable, or file key and line, so that one run lists them all.
// The configuration it returns along with them holds what could be read
// (a value that could not keeps the one below it), for Validate to check
// too; it is nil only when there is nothing to check: on -h, or when the
// file cannot be read or is not YAML. commandFlags are the flags of the
// command that runs with serve's settings (flows' --user…), taken out of
// args before: a misspelling of one is answered with it.
func Load(args []string, getenv func(string) string, commandFlags ...string) (*Config, error) {
	var flagged Config
	fs, path, bad := newFlagSet(&flagged)
	if err := parseFlags(fs, args, bad, commandFlags); err != nil {
		return nil, err
	}
	errs := bad.errs
	cfg, checkable := Defaults(), true
	cfg.given, cfg.from = map[string]bool{}, map[string]string{}
	if *path == "" {
		*path = getenv("MCPGATE_CONFIG")
	}
	if *path != "" {
		fileErrs, ok := loadFile(&cfg, *path, getenv)
		errs, checkable = append(errs, fileErrs...), ok
		cfg.file = *path
	}
	errs = append(errs, applyEnv(&cfg, getenv)...)
	fs.Visit(func(f *flag.Flag) {
		if v, ok := f.Value.(*flagValue); ok && !bad.flags[v.s.flag] {
			v.s.field(&cfg).Set(v.s.field(&flagged))
			cfg.given[v.s.key], cfg.from[v.s.key] = true, "--"+v.s.flag
		}
	})
	cfg.cmdlineSecrets = secretFlags(fs, &flagged)
	errs = append(errs, cfg.readSecretFiles())
	if !checkable {
		return nil, errors.Join(errs...)
	}
	return &cfg, errors.Join(errs...)
}

// secretFlags names the flags set in fs that hold a secret in clear: a
// client secret, a local account's password (not its bcrypt hash), a
// store DSN's password (in its user part or its query), an upstream URL's
// query (an API key, as often as not).
func secretFlags(fs *flag.FlagSet, flagged *Config) []string {
	var out []string
	fs.Visit(func(f *flag.Flag) {
		v, ok := f.Value.(*flagValue)
		if !ok {
			return
		}
		switch {
		case v.s.arg == "SECRET",
			v.s.flag == "store" && storePassword(flagged.Store),
			v.s.flag == "local-user" && slices.ContainsFunc(flagged.LocalUsers, clearPassword),
			v.s.flag == "upstream" && strings.Contains(flagged.Upstream, "?"),
			v.s.flag == "stdio-env": // a stdio server's token, as often as not
			out = append(out, "--"+v.s.flag)
		}
	})
	return out
}

// storePassword reports whether dsn, a URL, carries a password: after
// the user's name, or as the password option of its query, which the
// PostgreSQL driver takes too.
func storePassword(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil {
		return strings.Contains(dsn, "password")
	}
	_, ok := u.User.Password()
	return ok || u.Query().Has("password") || u.Query().Has("sslpassword")
}

// clearPassword reports whether a NAME[GROUPS]:PASSWORD spec holds a
// password rather than a bcrypt hash ("$2secret" is a password).
func clearPassword(spec string) bool {
	_, pw, ok := strings.Cut(spec, ":")
	return ok && !local.IsBcryptHash(pw)
}

// notHashed reports whether a NAME[GROUPS]:PASSWORD spec holds anything
// but a bcrypt hash after its first colon.
func notHashed(spec string) bool {
	_, pw, _ := strings.Cut(spec, ":")
	return !local.IsBcryptHash(pw)
}

// SecretsOnCommandLine names the flags given that hold a secret in clear:
// every user of the machine can read a process's command line
// (/proc/PID/cmdline, ps), so serve warns of them (SEC-141).
func (c *Config) SecretsOnCommandLine() []string { return c.cmdlineSecrets }

// ErrNoSuchFlag is a flag no setting has; the command's -h lists those
// there are.
var ErrNoSuchFlag = errors.New("no such flag")

// parseFlags parses args into fs, going on past every problem to record
// them all in bad, in order: a flag the flag package refuses, and a stray
// argument, after which it stops. It returns only flag.ErrHelp, for -h.
// A flag neither fs nor commandFlags has is answered with the one of them
// it most likely misspells, and the word after it, if no flag, is taken
// for its value. No argument is quoted back: it may be a secret, given to
// a misspelt flag (--github-secret) or in a flag's place.
func parseFlags(fs *flag.FlagSet, args []string, bad *badFlags, commandFlags []string) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	for _, f := range commandFlags {
		names = append(names, "--"+f)
	}
	known := func(word string) bool {
		name, _, _ := strings.Cut(strings.TrimLeft(word, "-"), "=")
		return strings.HasPrefix(word, "-") && slices.Contains(names, "--"+name)
	}
	for len(args) > 0 {
		err := fs.Parse(args)
		rest := fs.Args()
		switch {
		case errors.Is(err, flag.ErrHelp):
			return err
		case err != nil:
			msg := err.Error()
			if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
				name = strings.TrimPrefix(name, "-")
				if !flagName.MatchString(name) {
					// A secret given where a flag goes (-S3cret).
					bad.errs = append(bad.errs, fmt.Errorf("an argument that is no flag of this command, not shown (it may be a secret): %w", ErrNoSuchFlag))
				} else {
					bad.errs = append(bad.errs, fmt.Errorf("--%s: %w%s", name, ErrNoSuchFlag, didYouMean("--"+name, names)))
				}
				word := args[len(args)-len(rest)-1]
				if !strings.Contains(word, "=") && len(rest) > 0 && !known(rest[0]) {
					rest = rest[1:] // its value, whatever it looks like
				}
				args = rest
				continue
			} else if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
				msg = fmt.Sprintf("--%s: needs a value", strings.TrimPrefix(name, "-"))
			} else if strings.HasPrefix(msg, "bad flag syntax: ") {
				msg = "an argument that is no flag, not shown (it may be a secret)"
				if len(rest) > 0 {
					rest = rest[1:] // the one error that leaves its argument
				}
			}
			bad.errs = append(bad.errs, errors.New(msg))
		case len(rest) > 0:
			bad.errs = append(bad.errs, errors.New("an unexpected argument, not shown (it may be a secret): each setting is --flag value"))
			rest = rest[1:]
		}
		args = rest
	}
	return nil
}

// flagName is what an unknown flag's name must look like to be named in
// a problem, as every flag of mcpgate does (letters and dashes); anything
// else may be a secret in a flag's place.
var flagName = regexp.MustCompile(`^[a-z][a-z-]{0,40}$`)

// applyEnv sets every setting whose variable is set, and returns the
// variables it could not read. Of two variables for one setting, the
// first (MCPGATE_) wins.
func applyEnv(cfg *Config, getenv func(string) string) []error {
	var errs []error
	for _, s := range settings {
		if s.fileOnly() {
			continue
		}
		for i := len(s.env) - 1; i >= 0; i-- {
			if v := getenv(s.env[i]); v != "" {
				if err := s.set(cfg, v, false); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", s.env[i], err))
				} else {
					cfg.given[s.key], cfg.from[s.key] = true, s.env[i]
				}
			}
		}
	}
	return errs
}

// source ranks where the setting key was given: 3 a flag, 2 the
// environment, 1 the file, 0 nowhere.
func (c *Config) source(key string) int {
	switch from := c.from[key]; {
	case strings.HasPrefix(from, "--"):
		return 3
	case from != "":
		return 2
	case c.given[key]:
		return 1
	}
	return 0
}

// readSecretFiles reads each secret given as a file. A secret and its
// file are one setting: the one given where it wins (a flag over the
// environment over the file) stands, so that a secret rotated through a
// variable is not overridden by the old file; both given in one place
// is an error (SEC-220).
func (c *Config) readSecretFiles() error {
	read := func(path string, dst *string, what string) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		// An empty one is refused here, where it is read, as Validate
		// takes a secret file for a secret.
		if *dst = strings.TrimSpace(string(b)); *dst == "" {
			return fmt.Errorf("%s: %s is empty", what, path)
		}
		return nil
	}
	pair := func(key, path string, dst *string) error {
		secret, file := c.source(key), c.source(key+"_file")
		if *dst == "" {
			secret = 0 // an empty secret is none, as in a list's item
		}
		switch {
		case path == "" || secret > file:
			return nil
		case secret == file:
			return fmt.Errorf("%s and %s_file: give one of them, not both", key, key)
		}
		return read(path, dst, key+"_file")
	}
	errs := []error{
		pair("github_client_secret", c.GitHubClientSecretFile, &c.GitHubClientSecret),
		pair("oidc_client_secret", c.OIDCClientSecretFile, &c.OIDCClientSecret),
		pair("google_client_secret", c.GoogleClientSecretFile, &c.GoogleClientSecret),
	}
	// In a list, a secret and its file are given in one place.
	one := func(secret, path string, dst *string, what string) error {
		if secret != "" && path != "" {
			return fmt.Errorf("%s: give the secret or its file, not both", what)
		}
		return read(path, dst, what+"_file")
	}
	for i := range c.OIDCProviders {
		p := &c.OIDCProviders[i]
		errs = append(errs, one(p.ClientSecret, p.ClientSecretFile, &p.ClientSecret, fmt.Sprintf("oidc_providers[%d].client_secret", i)))
	}
	for i := range c.Clients {
		cl := &c.Clients[i]
		errs = append(errs, one(cl.Secret, cl.SecretFile, &cl.Secret, "clients["+cl.ID+"].secret"))
	}
	return errors.Join(errs...)
}

// flagValue is the flag.Value of one setting, writing into the Config
// that collects the flags, which starts empty: each use of a list flag
// adds one item, commas and all (a password may hold one).
type flagValue struct {
	s   *setting
	c   *Config
	bad *badFlags
}

// badFlags collects the problems of the flags, in order, and the flags
// whose value could not be read. Set records the problem there and returns
// nil, so that the flag package goes on to the next flag (it stops at the
// first error), and Load leaves such a flag's setting as the sources below
// set it.
type badFlags struct {
	errs  []error
	flags map[string]bool
}

func (v *flagValue) String() string {
	if v == nil || v.s == nil {
		return ""
	}
	return v.s.def
}

func (v *flagValue) Set(text string) error {
	if err := v.s.set(v.c, text, true); err != nil {
		v.bad.errs = append(v.bad.errs, fmt.Errorf("--%s: %w", v.s.flag, err))
		v.bad.flags[v.s.flag] = true
	}
	return nil
}

func (v *flagValue) IsBoolFlag() bool { return v.s.typ == reflect.TypeFor[bool]() }

// newFlagSet declares a flag for every setting that can have one, writing
// into c, and --config, whose value the returned pointer receives.
func newFlagSet(c *Config) (*flag.FlagSet, *string, *badFlags) {
	fs := flag.NewFlagSet("mcpgate serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "YAML configuration `file` (env MCPGATE_CONFIG)")
	bad := &badFlags{flags: map[string]bool{}}
	for i := range settings {
		s := &settings[i]
		if !s.fileOnly() {
			fs.Var(&flagValue{s: s, c: c, bad: bad}, s.flag, s.help)
		}
	}
	return fs, path, bad
}

// IsFlag reports whether name, without its dashes, is a flag of serve, so
// that a command taking serve's flags after an argument of its own can
// tell a missing argument from one that starts with "-".
func IsFlag(name string) bool {
	fs, _, _ := newFlagSet(&Config{})
	return fs.Lookup(name) != nil
}

// Usage is the help text of command (`mcpgate serve`, or one that takes
// serve's settings to find its store and keys): every setting, with its
// flag, environment variable, file key and default.
func Usage(command string) string {
	var b strings.Builder
	b.WriteString("Usage: " + command + " [flags]\n\n" +
		"Most settings are a flag, an MCPGATE_ environment variable and a key of the --config file\n" +
		"(those below the flags are the file's alone);\n" +
		"flags win over the environment, which wins over the file. A duration is written like 90s,\n" +
		"30m or 1h; leave a setting out for its default (0 is refused), and write off to turn off\n" +
		"what can be turned off (refresh_grace, key_rotation, upstream_recheck, unused_client_expiry).\n" +
		"A count (N) is a whole number above 0, in decimal (010 is 10), or off for the connection caps.\n\n" +
		"  --config FILE\n        YAML configuration file [MCPGATE_CONFIG]\n")
	var fileOnly []string
	for _, s := range settings {
		if s.fileOnly() {
			fileOnly = append(fileOnly, fmt.Sprintf("  %s\n        %s\n", s.key, s.help))
			continue
		}
		fmt.Fprintf(&b, "  --%s", s.flag)
		if s.arg != "" {
			fmt.Fprintf(&b, " %s", s.arg)
		}
		fmt.Fprintf(&b, "\n        %s", s.help)
		if s.def != "" {
			fmt.Fprintf(&b, " (default %s)", s.def)
		}
		fmt.Fprintf(&b, "\n        [%s; file: %s]\n", strings.Join(s.env, ", "), s.key)
	}
	b.WriteString("\nIn the configuration file only:\n")
	b.WriteString(strings.Join(fileOnly, ""))
	return b.String()
}

// Duration is a duration setting: a positive Go duration (90s, 30m, 1h),
// or off, which turns off what can be turned off (Validate says where)
// and is kept as a negative value, as mcpgate.Config wants it. Zero is
// mcpgate.Config's "not set, take the default", which a setting left out
// already is; a 0 written out is refused, since refresh_grace once read
// it as off and must not silently read it as the default now.
type Duration time.Duration

const off = Duration(-1)

func (d *Duration) UnmarshalText(text []byte) error {
	if bytes.Equal(text, []byte("off")) {
		*d = off
		return nil
	}
	v, err := time.ParseDuration(string(text))
	switch {
	case err != nil || v < 0:
		return fmt.Errorf("%q is not a duration (like 90s, 30m or 1h; off turns off what can be turned off)", text)
	case v == 0:
		return fmt.Errorf("%q: leave the setting out for its default; off turns off what can be turned off", text)
	}
	*d = Duration(v)
	return nil
}

// String writes d as a person would: off, or the shortest Go duration,
// 1h rather than time.Duration's 1h0m0s.
func (d Duration) String() string {
	if d < 0 {
		return "off"
	}
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Off reports whether the setting was turned off.
func (d Duration) Off() bool { return d < 0 }

// Count is a whole-number setting (max_groups, stdio_max_processes, a
// rate limit's burst…), read in decimal in the file as from a flag or a
// variable: 010 is 10, where YAML would read the octal 8, and 0x10, 0o10
// or 1_000 are refused (SEC-175). Validate bounds each.
type Count int

func (n *Count) UnmarshalText(text []byte) error {
	v, err := strconv.Atoi(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a whole number", text)
	}
	*n = Count(v)
	return nil
}

// Limit is a count setting that can be turned off: a whole number above
// zero, or off, kept as a negative value. Zero is "not set, take the
// default", as for Duration, and a 0 written out is refused for the same
// reason: it reads as "none allowed" to some and "no cap" to others.
type Limit int

func (n *Limit) UnmarshalText(text []byte) error {
	if bytes.Equal(text, []byte("off")) {
		*n = -1
		return nil
	}
	v, err := strconv.Atoi(string(text))
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a whole number above 0 (or off)", text)
	}
	*n = Limit(v)
	return nil
}

func (n Limit) String() string {
	if n < 0 {
		return "off"
	}
	return strconv.Itoa(int(n))
}

// Off reports whether the setting was turned off.
func (n Limit) Off() bool { return n < 0 }

// notSettings are the MCPGATE_ variables that are no setting but mean
// something: the configuration file's path, the test tools' directory,
// and what a stdio server is told of its caller.
var notSettings = []string{"MCPGATE_CONFIG", "MCPGATE_TOOLS", "MCPGATE_USER", "MCPGATE_USER_NAME", "MCPGATE_USER_EMAIL", "MCPGATE_USER_GROUPS"}

// UnknownVariables returns the names in environ (os.Environ's form) that
// begin with MCPGATE_ and that mcpgate does not read: a misspelt one
// (MCPGATE_LOCAL_USER) would otherwise be passed over in silence, and a
// file-only setting's (MCPGATE_RESOURCES) has no variable.
func UnknownVariables(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "MCPGATE_") || slices.Contains(notSettings, name) {
			continue
		}
		known := slices.ContainsFunc(settings, func(s setting) bool { return !s.fileOnly() && slices.Contains(s.env, name) })
		if !known {
			out = append(out, name)
		}
	}
	return out
}
