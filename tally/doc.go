// Package tally holds the election domain: the election model and its
// loader, the validity rules a station's count minutes must satisfy, and the
// rules that turn an electoral unit's totals into winners.
//
// It follows Vietnam's Law on the Election of National Assembly Deputies and
// People's Council Deputies (No. 85/2015/QH13) as applied on 23 May 2021; the
// public contract is ../shared/CONTRACT.md.
//
// The package does no I/O. An [Election] is loaded once, validated with every
// problem listed, and then compiled into dense integer indexes (stations,
// contests, units, areas) so that the fold in package projections can work
// on slices instead of maps. Minutes are checked with [Election.Check], which
// resolves their ids to those indexes and reports every broken rule as a
// [Violation]; the fold then only applies facts.
//
// An *Election is immutable after [Parse] returns it and safe for concurrent
// use.
package tally
