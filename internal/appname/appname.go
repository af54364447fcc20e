package appname

import (
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// Reserved holds the Keys of the pre-registered clients' names.
type Reserved map[string]bool

// Reserve returns the Reserved set of names; empty names reserve nothing.
func Reserve(names ...string) Reserved {
	r := Reserved{}
	for _, n := range names {
		if n != "" {
			r[Key(n)] = true
		}
	}
	return r
}

// Taken reports whether name, a self-registered client's, reads as one of
// the reserved names on a page.
func (r Reserved) Taken(name string) bool { return name != "" && r[Key(name)] }

// MixedScripts reports whether name's letters mix scripts beyond what UTS
// #39 calls moderately restrictive: one script; Latin with the scripts
// written beside it in Chinese, Japanese or Korean; or Latin with one other
// script but Cyrillic and Greek, whose letters pass for Latin ones. A name
// made to look like another ("Сorp", a Cyrillic С before Latin letters)
// mixes them, where no name a person writes does. A look-alike written
// wholly in one script is not caught: that takes Unicode's confusables
// table.
func MixedScripts(name string) bool {
	used := map[string]bool{}
	for _, r := range name {
		if !unicode.IsLetter(r) || unicode.In(r, unicode.Common, unicode.Inherited) {
			continue
		}
		for script, table := range unicode.Scripts {
			if unicode.Is(table, r) {
				used[script] = true
				break
			}
		}
	}
	if len(used) <= 1 {
		return false
	}
	for _, allowed := range highlyRestrictive {
		within := true
		for sc := range used {
			within = within && slices.Contains(allowed, sc)
		}
		if within {
			return false
		}
	}
	return len(used) > 2 || !used["Latin"] || used["Cyrillic"] || used["Greek"]
}

// highlyRestrictive are the sets of scripts UTS #39 lets one name mix at
// its highly restrictive level, which the moderately restrictive one takes
// in.
var highlyRestrictive = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// Key folds a client's name for comparing it with another: the PRECIS
// nickname profile (RFC 8266: width, compatibility forms, case), after what
// a page shows as nothing or as a blank is dropped, so that a name that
// only looks like another still differs from it in nothing a person sees
// on the page. Dropped are the spaces, blanks included (a Hangul filler,
// the braille blank), the default-ignorable characters (format controls,
// variation selectors, the combining grapheme joiner), and the combining
// marks of the compatibility decomposition, which a reader takes for a
// speck on a letter: a name shown a warning it need not have is the price.
func Key(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '\u2800' || unicode.In(r, unicode.Cf, unicode.Mn, unicode.Me,
			unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) {
			return -1
		}
		return r
	}, norm.NFKD.String(name))
	if k, err := precis.Nickname.CompareKey(name); err == nil {
		return k
	}
	return strings.ToLower(name)
}
