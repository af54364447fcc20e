// Package mcpgate is an OAuth 2.1 authorization gateway for MCP servers.
//
// A Gateway is at once the authorization server that MCP clients discover,
// register with and get tokens from, and the resource server that checks
// those tokens on every MCP request before the request reaches the MCP
// server behind it. People log in through upstream connectors (local
// accounts, GitHub, …) after they consent to each client.
//
// Protect your own go-sdk server:
//
//	srv := mcp.NewServer(&mcp.Implementation{Name: "mine"}, nil)
//	// ... add tools; in a tool, mcpgate.CallerFromRequest(ctx, req) says who called.
//	st, _ := sqlite.Open(ctx, "mcpgate.db")
//	gw, err := mcpgate.New(ctx, mcpgate.Config{
//		Store:      st,
//		SecretKey:  key, // 32 bytes, kept secret and stable
//		Connectors: []upstream.Connector{local.New(st, local.Options{})},
//		MCP:        mcpgate.MCPHandler(srv),
//	})
//	http.ListenAndServe("127.0.0.1:8080", gw)
package mcpgate
