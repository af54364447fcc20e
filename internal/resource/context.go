package resource

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// verifiedContext carries a checked token's auth.TokenInfo (with the caller
// in its Extra) under the key the go-sdk reads it with, so that its
// streamable transport binds sessions to the user (SESS-3) and tool
// handlers see req.Extra.TokenInfo. Doing this here, rather than through
// auth.RequireBearerToken, spares every request a second parse of the
// Authorization header and a second request clone.
type verifiedContext struct {
	context.Context
	info *auth.TokenInfo
}

func (c *verifiedContext) Value(key any) any {
	if key == sdkTokenInfoKey {
		return c.info
	}
	return c.Context.Value(key)
}

// sdkTokenInfoKey is the context key of auth.TokenInfoFromContext, learned
// once by letting that function ask a probe for it. A test checks that
// auth.TokenInfoFromContext finds the TokenInfo of a verifiedContext, so a
// go-sdk that reads it another way fails the build's tests, not users.
var sdkTokenInfoKey = func() any {
	p := &keyProbe{Context: context.Background()}
	auth.TokenInfoFromContext(p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}
