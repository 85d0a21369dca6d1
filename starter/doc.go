// Package starter starts the pipeline's workflows on a Temporal client, with
// the workflow ids, task queues and policies they rely on, so that the CLI,
// the tests and the benches start them the same way.
//
// It holds the backfill's starts for now (StartBackfill, WaitBackfill); the
// other workflows' starts move here next (issue 16).
package starter
