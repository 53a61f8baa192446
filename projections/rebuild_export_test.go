package projections

import "testing"

// SetRebuildBatchSize sets RebuildDir's batch size until t ends.
func SetRebuildBatchSize(t testing.TB, n int) {
	old := rebuildBatchSize
	rebuildBatchSize = n
	t.Cleanup(func() { rebuildBatchSize = old })
}
