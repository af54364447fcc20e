package github_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/github/githubtest"
)

// SEC-68: a GitHub login is rechecked as an OpenID provider's is (RT-3):
// the login hands back the user's token, and a refresh reads the user
// again with it, so an organization or team the person left is gone from
// their groups; a token GitHub no longer accepts (the person revoked the
// app, or GitHub revoked it) ends the session.
func TestSEC68_GitHubRecheckRereadsGroups(t *testing.T) {
	u := octocat
	u.Orgs, u.Teams = []string{"acme"}, []githubtest.Team{{Org: "acme", Slug: "core"}}
	e := newEnv(t, u)
	var rc upstream.RefreshingConnector = e.connector(github.Config{Groups: true})
	state := "state-recheck"
	user, token, err := rc.HandleCallbackSession(context.Background(), callback, e.authorize(rc.LoginURL(state, callback)))
	e.note(err)
	if err != nil || token == "" || !slices.Equal(user.Groups, []string{"acme", "acme/core"}) {
		t.Fatalf("login: %+v, token given %v, %v; want acme and acme/core with a token", user, token != "", err)
	}

	u.Orgs, u.Teams = nil, nil
	e.fake.AddUser(u)
	again, next, err := rc.Refresh(context.Background(), token)
	e.note(err)
	if err != nil || again.ID != user.ID || len(again.Groups) != 0 || next != token {
		t.Fatalf("refresh after leaving acme: %+v, same token %v, %v; want %s without groups", again, next == token, err, user.ID)
	}

	e.fake.RevokeTokens()
	_, _, err = rc.Refresh(context.Background(), token)
	e.note(err)
	if !errors.Is(err, upstream.ErrSessionEnded) {
		t.Fatalf("refresh with a revoked token: %v; want ErrSessionEnded", err)
	}
}
