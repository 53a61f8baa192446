package projections

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SetRebuildStall sets how long a rebuild's reader waits for a message
// before it restarts its consumer, and a function called with every
// ordered consumer a rebuild creates, until t ends.
func SetRebuildStall(t testing.TB, d time.Duration, onConsumer func(jetstream.Consumer)) {
	oldD, oldF := rebuildStall, onOrderedConsumer
	rebuildStall, onOrderedConsumer = d, onConsumer
	t.Cleanup(func() { rebuildStall, onOrderedConsumer = oldD, oldF })
}
