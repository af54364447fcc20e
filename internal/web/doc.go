// Package web renders mcpgate's own pages (consent, login, error) from
// embedded html/template files, with the headers every such page needs:
// no framing (DEP-3), no caching, no referrer, a strict CSP.
package web
