package jsonrpc

import "testing"

var benchCall = []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_issues","arguments":{"query":"is:open label:bug","limit":20,"repo":"mcpgate/mcpgate"},"_meta":{"progressToken":"p-42"}}}`)

func BenchmarkParse(b *testing.B) {
	var body Body
	b.SetBytes(int64(len(benchCall)))
	b.ReportAllocs()
	for b.Loop() {
		if err := body.Parse(benchCall); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScanAnswers(b *testing.B) {
	ans := []byte(`{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"found 3 issues: #1 #2 #3"}],"isError":false}}`)
	b.SetBytes(int64(len(ans)))
	b.ReportAllocs()
	for b.Loop() {
		_ = ScanAnswers(ans, func(Answer) {})
	}
}
