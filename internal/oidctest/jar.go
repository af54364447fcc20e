package oidctest

import (
	"net/http"
	"net/http/cookiejar"
	"testing"
)

func newJar(t testing.TB) http.CookieJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}
