// Package ratelimit holds the operator's rate limits (SEC-100): token
// buckets per user or per client on tools/call, by tool name, and per
// client at the OAuth endpoints /token, /authorize, /revoke and
// /introspect.
//
// # Rules and buckets
//
// A Rule names either tools (patterns as in a tool policy: '*' stands for
// any run of characters) or endpoints ("token", "authorize", "revoke",
// "introspect"), whom it
// counts (Per: "user" or "client"; the endpoints know no user before the
// grant, so an endpoint rule counts clients), and a Rate with a Burst.
// Each (rule, user or client) has its own bucket: it holds Burst tokens
// when full, refills at Rate, and a request takes one token from every
// bucket whose rule matches it. Several rules that match one call must
// all have a token for it.
//
// The decision is all or nothing: a request (or a batch of tools/call)
// that one bucket refuses takes no token from any other, so a refused
// request costs the caller nothing against the other rules, and a retry
// after the wait given succeeds unless something else spent the tokens
// meanwhile. A batch holding more calls of one bucket than its Burst can
// never pass.
//
// # Bounded memory
//
// A bucket left idle for long enough to be full again is the same as a
// new one, so it is dropped (swept at most once a minute, and whenever the
// table is at its cap): nothing is forgotten that would change a
// decision. The table holds at most Options.MaxKeys buckets; a request
// that needs a new bucket while the table is full of buckets that are
// still refilling is refused (wait one second), and the callers that hold
// buckets go on as before: at the cap, the newcomer is the one refused.
//
// Buckets are in this process: with N replicas behind a load balancer a
// caller may get up to N times the rate.
//
// Every refusal goes through Limiter.refused, the one place where a
// counter of limited requests belongs.
package ratelimit
