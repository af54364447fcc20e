package appname

import "testing"

// SEC-126: a client's name that mixes scripts beyond UTS #39's moderately
// restrictive level is flagged, as look-alikes of Latin names are; a name
// in one script, Latin beside the scripts of Chinese, Japanese and Korean,
// or Latin with one other script but Cyrillic and Greek, is not.
func TestSEC126_MixedScripts(t *testing.T) {
	for name, want := range map[string]bool{
		"Corp Assistant":                  false,
		"\u0421orp Assistant":             true, // a Cyrillic С
		"G\u043e\u043egle":                true, // Cyrillic о's
		"\u03a1ay\u03a1al":                true, // Greek Ρ's
		"Привет":                          false,
		"Ελληνικά 2":                      false,
		"日本語 App":                         false,
		"ひらがな カタカナ 漢字 Latin":              false,
		"한국어 App 漢字":                      false,
		"中文 ㄅㄆ":                           false,
		"한국어 ひらがな":                        true,
		"Café Ünïcødé":                    false, // Latin with marks, and ø
		"":                                false,
		"1234 !?":                         false,
		"Claude \u0410pp":                 true, // a Cyrillic А
		"Arabic \u0639\u0631\u0628\u064a": false,
		"\u0421\u0440\u03b1 Corp":         true, // Cyrillic, Greek and Latin
	} {
		if got := MixedScripts(name); got != want {
			t.Errorf("MixedScripts(%q) = %v, want %v", name, got, want)
		}
	}
}
