package activities

// Error types (temporal.ApplicationError.Type) of the failures no retry can
// fix, in one place: workflows name them in their retry policies'
// NonRetryableErrorTypes, operators and alerts in queries of the workflow
// histories. They are public names: a changed string breaks both.
const (
	// ErrTypeInvalidInput: an activity's or a workflow's input is invalid
	// (a bad day, zone, topic, shard or offset).
	ErrTypeInvalidInput = "InvalidInput"
	// ErrTypeBackfillInput is ErrTypeInvalidInput, under the backfill's
	// older name.
	ErrTypeBackfillInput = ErrTypeInvalidInput

	// ErrTypeBronzeCorrupt: a bronze object is not what its index says.
	ErrTypeBronzeCorrupt = "BronzeCorrupt"
	// ErrTypeGoldRejected is no longer returned: rows gold refuses are
	// quarantined, and other gold errors are retried (kept for histories
	// and retry policies that name it).
	ErrTypeGoldRejected = "GoldRejected"
	// ErrTypeOffsetAhead: a stored offset is beyond the partition's end.
	ErrTypeOffsetAhead = "OffsetBeyondEnd"

	// ErrTypeTopicRecreated: Kafka's topic id is not the one of the
	// incarnation the stream streams. An operator decides; the message says
	// how (pipeline incarnation --start-new). No retry makes the old topic
	// come back, and going on would read the new topic at the old topic's
	// offsets.
	ErrTypeTopicRecreated = "TopicRecreated"
	// ErrTypeStaleOffsets: the shard holds offsets that cannot be the
	// current incarnation's: carried from one an operator has retired
	// meanwhile (or pipeline.stream_offsets was changed by hand). Started
	// again, the shard takes the stored offsets.
	ErrTypeStaleOffsets = "StaleOffsets"

	// ErrTypeBackfill: a bronze or silver object is missing or corrupt, or
	// the warehouse refused the rows.
	ErrTypeBackfill = "BackfillFailed"
	// ErrTypeBackfillConflict: another Backfill run that is still running
	// holds one of the days.
	ErrTypeBackfillConflict = "BackfillConflict"

	// ErrTypeRefused: the resource cannot be changed as declared (a topic
	// cannot shrink, a bucket that anonymous users can read).
	ErrTypeRefused = "ProvisionRefused"
	// ErrTypeInvalid: the activity's input is not a valid config for the kind.
	ErrTypeInvalid = "InvalidResource"
	// ErrTypeInvalidBlueprint: the Provision workflow's input is not a valid
	// blueprint.
	ErrTypeInvalidBlueprint = "InvalidBlueprint"
	// ErrTypePlanRefused: the plan has refused changes (a topic cannot
	// shrink); nothing was applied.
	ErrTypePlanRefused = "PlanRefused"
)
