package config

import (
	"reflect"
	"strings"
)

// nearest returns the name of names that name most likely misspells, or ""
// when none is near enough: at most two letters added, dropped, changed or
// swapped, and at most a third of name's letters, so that a short name
// is not taken for another short one. A name that differs from one only
// in case (keys, flags and variables are read as written) misspells it.
func nearest(name string, names []string) string {
	best, bestDist := "", 3
	limit := len(name) / 3
	for _, n := range names {
		if n == name || len(n) < len(name)-2 || len(n) > len(name)+2 {
			continue // itself, or more than two letters apart, whatever they are
		}
		d := editDistance(strings.ToLower(name), strings.ToLower(n))
		if d < bestDist && d <= limit {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// the fewest letters added, dropped, changed or swapped with the next one
// that turn a into b.
func editDistance(a, b string) int {
	// prev2, prev and cur are rows of the table for a[:i-2], a[:i-1], a[:i].
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// didYouMean is ": did you mean X?" for the name of names that name
// misspells, or "".
func didYouMean(name string, names []string) string {
	if n := nearest(name, names); n != "" {
		return ": did you mean " + n + "?"
	}
	return ""
}

// NearestVariable returns the MCPGATE_ variable that name, a variable
// mcpgate does not read, most likely misspells, or "".
func NearestVariable(name string) string {
	var names []string
	for _, s := range settings {
		if !s.fileOnly() {
			names = append(names, s.env[0])
		}
	}
	return nearest(name, names)
}

// fileKeyNames lists, by the name the YAML decoder gives each struct type
// of the configuration file (config.Config, config.Resource…), the keys
// it takes.
var fileKeyNames = func() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type) []string
	walk = func(t reflect.Type) []string {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			return nil
		}
		if keys, ok := out[t.String()]; ok {
			return keys
		}
		out[t.String()] = nil // a type that contains itself ends here
		var keys []string
		for i := range t.NumField() {
			f := t.Field(i)
			key, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case !f.IsExported() || key == "-":
			case opts == "inline":
				keys = append(keys, walk(f.Type)...)
			case key == "":
				keys = append(keys, strings.ToLower(f.Name)) // the decoder's default
				walk(f.Type)
			default:
				keys = append(keys, key)
				walk(f.Type)
			}
		}
		out[t.String()] = keys
		return keys
	}
	walk(reflect.TypeFor[Config]())
	// A local account is decoded by hand, in a type of that name's words.
	out["config.LocalUser"] = localUserKeys
	return out
}()
