package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/sandbox"
)

// Gateway is the one conversion from the settings to the library's
// mcpgate.Config. It leaves out what the caller builds at run time: the
// store, the secret key, the connectors, the audit recorder, the logger,
// the version and the fallback URL of the bound address.
func (c *Config) Gateway() (mcpgate.Config, error) {
	g := mcpgate.Config{
		PublicURL:       c.PublicURL,
		DisableCIMD:     c.DisableCIMD,
		RecordFlows:     !c.DisableFlowDebugger,
		CIMDAllowHosts:  c.CIMDAllowHosts,
		CIMDDenyHosts:   c.CIMDDenyHosts,
		AllowedOrigins:  c.AllowedOrigins,
		AccessTokenTTL:  time.Duration(c.AccessTokenTTL),
		RefreshTokenTTL: time.Duration(c.RefreshTokenTTL),
		RefreshGrace:    time.Duration(c.RefreshGrace),    // off is negative in both
		UpstreamRecheck: time.Duration(c.UpstreamRecheck), // off is negative in both
		KeyRotation:     time.Duration(c.KeyRotation),     // off is negative in both

		UnusedClientExpiry: time.Duration(c.UnusedClientExpiry), // off is negative in both

		IntrospectionClients: c.IntrospectionClients,
		MaxSessionsPerUser:   int(c.MaxSessionsPerUser),
		MaxStreamsPerUser:    int(c.MaxStreamsPerUser),
		MaxGroups:            int(c.MaxGroups),
		AdminGroups:          c.AdminGroups,
		Access:               c.Access.rules(),
		TrustedProxies:       trustedProxies(c.TrustedProxies),
	}
	if c.CIMDTestCAFile != "" {
		pool, err := readCAFile(c.CIMDTestCAFile)
		if err != nil {
			return mcpgate.Config{}, fmt.Errorf("cimd_test_ca_file: %w", err)
		}
		g.CIMDRootCAs = pool
	}
	for i, r := range c.RateLimits {
		rule, err := r.rule()
		if err != nil {
			return mcpgate.Config{}, fmt.Errorf("rate_limits[%d]: %w", i, err)
		}
		g.RateLimits = append(g.RateLimits, rule)
	}
	for _, cl := range c.Clients {
		g.Clients = append(g.Clients, mcpgate.Client{ID: cl.ID, Secret: cl.Secret, Name: cl.Name, RedirectURIs: cl.RedirectURIs})
	}
	for _, r := range c.resources() {
		res, err := c.resource(r)
		if err != nil {
			return mcpgate.Config{}, err
		}
		g.Resources = append(g.Resources, res)
	}
	return g, nil
}

// resources lists the protected resources: the file's resources list, or
// /mcp with the top level's settings.
func (c *Config) resources() []Resource {
	if len(c.Resources) > 0 {
		return c.Resources
	}
	return []Resource{{Path: "/mcp", Backend: c.Backend, Scopes: c.Scopes, OptionalScopes: c.OptionalScopes, ScopeImplies: c.ScopeImplies}}
}

func (c *Config) resource(r Resource) (mcpgate.Resource, error) {
	res := mcpgate.Resource{Path: r.Path, Name: r.Name, Scopes: r.Scopes, OptionalScopes: r.OptionalScopes,
		ScopeImplies: r.ScopeImplies, Upstream: r.Upstream, UpstreamTransport: r.UpstreamTransport, IdentityToken: r.IdentityToken,
		IdentityHeaders: mcpgate.IdentityHeaders(r.IdentityHeaders), ToolPolicy: r.ToolPolicy}
	res.Access = r.Access.rules()
	if r.Stdio == "" {
		return res, nil
	}
	argv, err := SplitCommand(r.Stdio)
	if err != nil {
		return mcpgate.Resource{}, fmt.Errorf("stdio of %s: %w", r.Path, err)
	}
	res.Command = argv
	res.Stdio = mcpgate.StdioOptions{Env: r.StdioEnv, MaxProcesses: int(r.StdioMaxProcesses), IdleTimeout: time.Duration(r.StdioIdleTimeout),
		Dir:       filepath.Join(c.DataDir, "stdio", stdioDirName(r.Path)),
		Isolation: r.StdioIsolation, ReadPaths: r.StdioReadPaths, Private: c.private()}
	switch r.StdioUIDRange {
	case "":
		res.Stdio.UIDs = sandbox.DefaultRange
	case "off":
	default:
		if res.Stdio.UIDs, err = sandbox.ParseRange(r.StdioUIDRange); err != nil {
			return mcpgate.Resource{}, fmt.Errorf("stdio_uid_range of %s: %w", r.Path, err)
		}
	}
	return res, nil
}

func (a Access) rules() mcpgate.Access {
	return mcpgate.Access{Users: a.Users, EmailDomains: a.EmailDomains, Groups: a.Groups}
}

// private lists what no stdio server may read: the data directory (key,
// database, the servers' own directories), the database and audit log
// wherever they are, the configuration file and the files secrets are
// read from.
func (c *Config) private() []string {
	out := []string{c.DataDir}
	if db, ok := strings.CutPrefix(c.StoreDSN(), "sqlite:"); ok {
		out = append(out, db)
	}
	for _, f := range []string{c.AuditLog, c.file, c.SecretKeyFile, c.GitHubClientSecretFile, c.OIDCClientSecretFile, c.GoogleClientSecretFile} {
		if f != "" {
			out = append(out, f)
		}
	}
	for _, op := range c.OIDCProviders {
		if op.ClientSecretFile != "" {
			out = append(out, op.ClientSecretFile)
		}
	}
	for _, sc := range c.Clients {
		if sc.SecretFile != "" {
			out = append(out, sc.SecretFile)
		}
	}
	return out
}

// stdioDirName is the directory under DATA-DIR/stdio of a resource's stdio
// servers, one HOME per person in it: the path with "_" for "/", trimmed
// of "_" ("/github/mcp": github_mcp). validateResources refuses a path
// whose name is empty or another stdio resource's: the people's HOMEs
// would then sit where the resources' directories do, or in another
// resource's (SEC-22).
func stdioDirName(path string) string {
	return strings.Trim(strings.ReplaceAll(path, "/", "_"), "_")
}

// trustedProxies reads trusted_proxies, each a network or a single
// address; validateAddresses has refused any other.
func trustedProxies(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, ok := parseProxy(s); ok {
			out = append(out, p)
		}
	}
	return out
}

// proxyNets are the address spaces no client on the internet has an
// address in: a trusted proxy's network may be wider than /8 (IPv4) or
// /32 (IPv6) only within one of them (SEC-170).
var proxyNets = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("::1/128"),
}

// tooWide reports whether p is too wide a network for trusted proxies:
// wider than /8 (IPv4) or /32 (IPv6), and not wholly within proxyNets.
// A client whose own address a trusted network holds names itself by the
// X-Forwarded-For it writes (SEC-170).
func tooWide(p netip.Prefix) bool {
	widest := 32
	if p.Addr().Is4() {
		widest = 8
	}
	if p.Bits() >= widest {
		return false
	}
	for _, n := range proxyNets {
		if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
			return false
		}
	}
	return true
}

// parseProxy reads "10.0.0.0/8" or "127.0.0.1" (as 127.0.0.1/32). An
// IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) is read as the IPv4 one
// it maps: the peers it is compared with are unmapped, and tooWide judges
// it by its IPv4 width (::ffff:0.0.0.0/96 is 0.0.0.0/0).
func parseProxy(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}
