// Package workload generates what tally is measured against: an election
// the size of a country and the night of count minutes it produces.
//
// # The election
//
// [National] builds an election file shaped like Vietnam's of 23 May 2021
// (shared/DOMAIN.md, "Orders of magnitude"): 63 provinces, about 700
// districts and 10,600 wards, about 85,000 polling stations of 300 to
// 4,000 voters (815 on average, 69 million in all), and the four ballots a
// voter received: the National Assembly (184 units, 500 seats, 868
// candidates) and the province, district and commune People's Councils.
// The table of provinces is real (approximate populations, district and
// commune counts); everything below it is drawn from the seed: names,
// station sizes, how units group districts and wards, candidates (all
// fictional, and named so). NationalConfig.Scale grows or shrinks the
// country: voters and stations scale linearly, districts per province and
// wards per district as the square root, so Scale 10 is about Indonesia's
// 820,000 polling stations and Scale 0.05 a test-sized 4,000.
//
// An [ElectionFile] is the file's content before validation. WriteJSON
// streams it (a full-scale file is tens of megabytes and takes about two
// seconds for tally.Parse to load); Parse encodes and parses it as the
// server would.
//
// # The night
//
// [Night] plays election night against any parsed election, generated or
// not. Every (contest, station) gets a small plan: partials while
// counting, the final, and for a configurable share a correction, a
// withdrawal followed by a recount, a duplicate, a partial arriving after
// a higher version, or a broken attempt that the gateway must refuse. Each
// submission carries its [Kind], so a caller knows what the server should
// make of it, and its simulated time from [PollsClose].
//
// Night never holds the submissions. A plan is a pure function of the seed
// and the (contest, station), so Night keeps only a min-heap with one
// entry per (contest, station), holding the time and index of its next
// submission; popping the heap recomputes the plan (a handful of draws)
// and the minutes. Memory is O(stations) and the stream is ordered by
// simulated time, as a real night would arrive at the server.
//
// # Determinism
//
// Every draw comes from math/rand/v2's PCG, seeded from the run's seed, a
// purpose tag and the indexes of what is drawn (a province, a station, a
// (contest, station), a unit), mixed by splitmix64. Nothing depends on
// map order, goroutines or the clock, so the same seed gives the same file
// and the same night, byte for byte, and a province or station is drawn
// the same whatever else is generated.
package workload
