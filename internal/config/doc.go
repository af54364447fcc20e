// Package config is mcpgate's configuration file format and command-line
// contract: defaults, a YAML file (unknown keys rejected, $VAR expanded,
// *_file for secrets), MCPGATE_* environment variables and flags, in that
// order of precedence, lowest first. Validate reports every problem at
// once so that a bad setting never starts a half-configured server.
package config
