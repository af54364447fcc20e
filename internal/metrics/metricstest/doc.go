// Package metricstest reads samples from a gateway's metrics, gathered
// from its registry or scraped as text from /metrics, for tests.
package metricstest
