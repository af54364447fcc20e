package main

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/mcpgate/mcpgate/bench"
)

// total sums the rounds of one load, all of them or only the quiet ones.
type total struct {
	res    bench.Result
	stats  storeStats
	rounds int
	pgSecs float64 // the PostgreSQL server's CPU seconds; -1 when not known
}

func sum(rounds []round, kind string, keep func(*round) bool) total {
	var t total
	if len(rounds) > 0 && rounds[0].pg < 0 {
		t.pgSecs = -1
	}
	for i := range rounds {
		r := &rounds[i]
		if r.kind != kind || !keep(r) {
			continue
		}
		t.res.Add(r.res)
		t.stats.add(r.stats)
		t.rounds++
		if r.pg >= 0 && t.pgSecs >= 0 {
			t.pgSecs += r.pg * r.res.Elapsed.Seconds()
		} else {
			t.pgSecs = -1
		}
	}
	return t
}

// report prints the Markdown table and returns the number of failed
// operations, warm-up included.
func report(w io.Writer, o options, storeDesc, mem string, rounds []round, warm *bench.Result) int64 {
	quiet := func(r *round) bool { return r.res.Quiet(o.Quiet) }
	all := func(*round) bool { return true }

	fmt.Fprintf(w, "## flowload: authorization-code flows and refresh rotations through mcpgate\n\n")
	fmt.Fprintf(w, "store: %s; %d workers (loopback HTTP, keep-alive); %d rounds of %s per load (%s alternating), warm-up %s; %s; gateway log: %s\n\n",
		storeDesc, o.Conns, o.Rounds, o.Duration, joinKinds(o.kinds()), o.Warmup, bench.Machine(), o.LogFormat)
	fmt.Fprintf(w, "| round | load | ops/s | p50 | p99 | CPU/op | PostgreSQL CPU/op | commits/op | writes/commit | errors | other processes' CPU |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	sqliteCols := func(st storeStats, ops int64) (string, string) {
		if o.storeKind != "sqlite" {
			return "–", "–"
		}
		return fmt.Sprintf("%.3f", st.commitsPer(ops)), fmt.Sprintf("%.1f", st.writesPerCommit())
	}
	row := func(label, kind string, r *bench.Result, st storeStats, pgSecs float64) {
		c, wc := sqliteCols(st, r.Total())
		pg := "–"
		if pgSecs >= 0 && r.OK > 0 {
			pg = bench.FmtDur(time.Duration(pgSecs * 1e9 / float64(r.OK)))
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %d | %s |\n", label, kind,
			r.RPS(), bench.FmtDur(r.Latency.Quantile(.5)), bench.FmtDur(r.Latency.Quantile(.99)),
			bench.FmtDur(r.CPUPerRequest()), pg, c, wc, r.Errors, bench.FmtCPU(r.CPU))
	}
	for i := range rounds {
		r := &rounds[i]
		label := fmt.Sprint(r.n)
		if !quiet(r) {
			label += " (disturbed)"
		}
		pgSecs := -1.0
		if r.pg >= 0 {
			pgSecs = r.pg * r.res.Elapsed.Seconds()
		}
		row(label, r.kind, r.res, r.stats, pgSecs)
	}
	for _, k := range o.kinds() {
		t := sum(rounds, k, all)
		row("**total**", k, &t.res, t.stats, t.pgSecs)
	}
	fmt.Fprintf(w, "\n")

	for _, k := range o.kinds() {
		t := sum(rounds, k, all)
		q := sum(rounds, k, quiet)
		target := targetFlows
		if k == kindRefreshes {
			target = targetRefreshes
		}
		best, scope := t, "all rounds"
		if q.rounds > 0 && q.rounds < t.rounds {
			best, scope = q, fmt.Sprintf("the %d quiet rounds", q.rounds)
		}
		note := ""
		if q.rounds == 0 && t.res.CPU.OK {
			note = " (no round was quiet: other processes took CPU throughout; rerun on a quiet machine)"
		}
		allRounds := ""
		if best.rounds != t.rounds {
			allRounds = fmt.Sprintf("; all rounds: %.0f/s", t.res.RPS())
		}
		fmt.Fprintf(w, "- %s: **%.0f/s** over %s (%d in %s%s), p50 %s, p99 %s, CPU %s per operation (this process: load generator and gateway); target ≥ %.0f/s: **%s**%s\n",
			k, best.res.RPS(), scope, best.res.OK, best.res.Elapsed.Round(1e6), allRounds,
			bench.FmtDur(best.res.Latency.Quantile(.5)), bench.FmtDur(best.res.Latency.Quantile(.99)),
			bench.FmtDur(best.res.CPUPerRequest()), target, bench.Verdict(best.res.RPS() >= target), note)
		if o.storeKind == "sqlite" {
			busy, commit := t.stats.busyShares(t.res.Elapsed)
			fmt.Fprintf(w, "  - SQLite: %d commits for %d writes: %.3f commits (fsyncs) per %s, %.1f writes per commit; the writer was busy %.0f%% of the time, %.0f%% in COMMIT (%s per COMMIT)\n",
				t.stats.commits, t.stats.writes, t.stats.commitsPer(t.res.Total()), singular(k), t.stats.writesPerCommit(),
				busy, commit, bench.FmtDur(t.stats.commitTime()))
		}
		if t.res.CPU.OK {
			pg := ""
			if t.pgSecs >= 0 {
				pg = fmt.Sprintf(", the PostgreSQL server %.2f", t.pgSecs/t.res.Elapsed.Seconds())
			}
			fmt.Fprintf(w, "  - CPU: this process %.2f cores of %d%s, other processes %.2f\n", t.res.CPU.Self, runtime.NumCPU(), pg, t.res.CPU.Others)
		}
	}
	if mem != "" {
		fmt.Fprintf(w, "- memory after the rounds: %s\n", mem)
	}
	var errs int64
	for _, r := range rounds {
		errs += r.res.Errors
	}
	errs += warm.Errors
	if errs > 0 {
		fmt.Fprintf(w, "- **%d FAILED OPERATIONS (%d in the warm-up): these figures are not valid**\n", errs, warm.Errors)
	} else {
		fmt.Fprintf(w, "- failed operations: 0 (every /authorize answered 302 with a code, every /token 200 with both tokens)\n")
	}
	return errs
}

func joinKinds(k []string) string {
	if len(k) == 1 {
		return k[0] + " only"
	}
	return k[0] + " and " + k[1]
}

func singular(kind string) string {
	if kind == kindFlows {
		return "flow"
	}
	return "refresh"
}
