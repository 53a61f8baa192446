package workload

import (
	"math"
	"math/rand/v2"
	"time"
)

// Tags keep the random streams drawn for different purposes apart: two
// streams with the same seed and indexes but different tags are unrelated.
const (
	tagProvince uint64 = iota + 1
	tagStation
	tagPlan
	tagCounts
	tagUnit
	tagWrong
	tagBreak
	tagTwoTier
)

// mix64 is the splitmix64 finalizer: a bijection on uint64 that spreads
// every input bit over every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// stream is a PCG generator that can be re-seeded in place, so that the
// night generator derives one independent stream per station, per
// (station, contest) and per unit without allocating.
type stream struct {
	pcg rand.PCG
	*rand.Rand
}

func newStream() *stream {
	s := &stream{}
	s.Rand = rand.New(&s.pcg)
	return s
}

// reset seeds the stream from the run's seed, a purpose tag and two
// indexes. The same arguments always give the same sequence.
func (s *stream) reset(seed, tag, a, b uint64) *stream {
	h := mix64(seed ^ mix64(tag*0x9e3779b97f4a7c15))
	h1 := mix64(h ^ mix64(a+0x632be59bd9b4e019))
	h2 := mix64(h1 ^ mix64(b+0x85157af5))
	s.pcg.Seed(h1, h2)
	return s
}

// between returns a uniform float in [lo, hi).
func (s *stream) between(lo, hi float64) float64 { return lo + (hi-lo)*s.Float64() }

// lognormal returns exp(σ·N(0,1)), a positive factor of median 1.
func (s *stream) lognormal(sigma float64) float64 { return math.Exp(sigma * s.NormFloat64()) }

// triangular returns a draw of the triangular distribution on [lo, hi]
// with the given mode.
func (s *stream) triangular(lo, mode, hi float64) float64 {
	u := s.Float64()
	f := (mode - lo) / (hi - lo)
	if u < f {
		return lo + math.Sqrt(u*(hi-lo)*(mode-lo))
	}
	return hi - math.Sqrt((1-u)*(hi-lo)*(hi-mode))
}

// duration returns a uniform duration in [lo, hi), to the millisecond.
func (s *stream) duration(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	ms := int64((hi - lo) / time.Millisecond)
	if ms <= 0 {
		return lo
	}
	return lo + time.Duration(s.Int64N(ms))*time.Millisecond
}

func roundInt(x float64) int { return int(math.Round(x)) }
