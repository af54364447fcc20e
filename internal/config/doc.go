// Package config is mcpgate's configuration file format and command-line
// contract: defaults, a YAML file (unknown keys rejected, $VAR expanded in
// its values, *_file for secrets), MCPGATE_* environment variables and flags, in that
// order of precedence, lowest first. Load reports every value it cannot
// read, from every source, by its flag, variable or file key and line, and
// Validate every problem of the values that could be read, so that one run
// lists them all and a bad setting never starts a half-configured server;
// and Config.Gateway is the one conversion to the library's mcpgate.Config.
//
// Each setting is declared once, as a field of Config (or of its inline
// Backend) whose tags are a row of the settings table:
//
//	yaml     the file key; the flag is the key with dashes (data_dir:
//	         --data-dir) and the variable MCPGATE_ and the key in capitals
//	flag     another flag name, where the key's would read badly: the
//	         singular of a list given once per item (--local-user)
//	env      a further variable, read below the MCPGATE_ one (the seed's
//	         GITHUB_CLIENT)
//	arg      the flag's argument in `serve -h`
//	default  the value when nothing sets it, as a user would write it
//	help     its line in `serve -h`
//
// The field's type is its parser: string, []string (a repeated flag, a
// comma-separated variable, a YAML list), LocalUsers (a []string whose
// file items may also be mappings, kept as the spec they stand for), bool, Count (a whole
// number, in decimal in the file too), Duration, and Limit (a count that can be off). Settings of other types (resources, clients,
// tool_policy…) are read from the file only. Adding a setting is adding a field, its check in Validate if it
// needs one, its row in README.md (a test checks every setting has one),
// and its use.
//
// Durations follow one rule, as in mcpgate.Config: zero means "not set",
// which takes the default. A setting left out is not set; a 0 written out
// is refused (refresh_grace once read it as off). "off" turns off what can
// be turned off (refresh_grace, key_rotation, upstream_recheck,
// unused_client_expiry),
// and Validate refuses it elsewhere. A Limit follows the same rule: left out is the default, 0
// is refused, off is kept as a negative value (the connection caps).
package config
