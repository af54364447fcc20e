package config

import (
	"errors"
	"strings"
)

// SplitCommand splits a command line into words the way a POSIX shell
// does, without running one: words are separated by unquoted blanks
// (space, tab, newline); single quotes keep everything up to the next
// single quote literally; double quotes keep their contents except that a
// backslash escapes $, `, ", \ and a newline; an unquoted backslash keeps
// the next character literally (a backslash-newline pair is removed). There
// is no expansion of any kind ($VAR, ~, globs) and no operators (;, |, >).
// It fails on an unterminated quote, a trailing backslash, or no words.
func SplitCommand(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("stdio: command ends with a backslash")
			}
			i++
			if s[i] != '\n' {
				cur.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("stdio: command has an unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			inWord = true
			i++
			for ; ; i++ {
				if i >= len(s) {
					return nil, errors.New("stdio: command has an unterminated double quote")
				}
				d := s[i]
				if d == '"' {
					break
				}
				if d == '\\' && i+1 < len(s) {
					switch n := s[i+1]; n {
					case '$', '`', '"', '\\':
						cur.WriteByte(n)
						i++
						continue
					case '\n':
						i++
						continue
					}
				}
				cur.WriteByte(d)
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, errors.New("stdio: empty command")
	}
	return words, nil
}
