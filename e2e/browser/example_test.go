package browser_test

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

func ExampleFollowAuthorization() {
	as := newFakeAS() // a stand-in for mcpgate: consent form, then login form
	defer as.Close()

	code, state, iss, err := browser.FollowAuthorization(context.Background(),
		as.URL+"/authorize?client_id=good&state=xyz", "http://127.0.0.1:1/cb", "alice", "wonderland")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(code, state, iss)
	// Output: X xyz https://issuer.test
}
