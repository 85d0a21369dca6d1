// Package activities holds the pipeline's Temporal activities as methods on
// structs that hold their clients. Every activity is idempotent by
// construction, so a retry or a rerun never doubles anything.
package activities
