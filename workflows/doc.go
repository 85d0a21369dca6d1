// Package workflows holds the pipeline's Temporal workflows: thin,
// deterministic orchestration over the activities, carrying offsets, object
// keys and counts, never rows.
package workflows
