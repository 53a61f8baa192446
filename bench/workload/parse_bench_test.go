package workload_test

import (
	"bytes"
	"testing"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/tally"
)

func BenchmarkParseNational(b *testing.B) {
	ef, err := workload.National(workload.NationalConfig{Seed: 2021, Scale: 2})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ef.WriteJSON(&buf); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tally.Parse(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}
