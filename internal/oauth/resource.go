package oauth

// Resource is a protected resource as the protocol sees it: its place
// under the issuer, and the scopes of the tokens issued for it. The
// authorization server serves a list of them, and each resource's guard
// one.
type Resource struct {
	// Path is where it is served, like "/mcp": its URL, and the audience
	// of its tokens, is the issuer followed by Path (RES-1, RES-3).
	Path string
	Name string // resource_name in its metadata
	// Scopes are required by every request and so part of every grant;
	// the minimal set advertised in its metadata (PRM-7).
	Scopes []string
	// Optional scopes are granted when asked for (step-up), never
	// advertised in its metadata.
	Optional []string
	// Implies maps a broader scope to the narrower ones it includes
	// (SCOPE-5).
	Implies Hierarchy
}
