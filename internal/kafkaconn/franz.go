package kafkaconn

import (
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// FranzOpts returns the same TLS and SASL as options of a franz-go client
// (github.com/twmb/franz-go/pkg/kgo). The pipeline reads and writes with
// kafka-go; franz-go makes the few requests kafka-go cannot: Metadata v10
// and later, which carries the topic ids that tell a recreated topic from
// the old one. The zero Config gives no option (plaintext, no SASL).
func (c Config) FranzOpts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	var mech sasl.Mechanism
	switch c.mechanism() {
	case MechanismPlain:
		mech = plain.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsMechanism()
	case MechanismSCRAMSHA256:
		mech = scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha256Mechanism()
	case MechanismSCRAMSHA512:
		mech = scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha512Mechanism()
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}
