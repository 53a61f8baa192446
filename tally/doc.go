// Package tally holds the election domain: the election model and its
// loader, the validity rules a station's count minutes must satisfy, and the
// rules that turn an electoral unit's totals into winners.
//
// It follows Vietnam's Law on the Election of National Assembly Deputies and
// People's Council Deputies (No. 85/2015/QH13) as applied on 23 May 2021; the
// public contract is ../shared/CONTRACT.md.
//
// Since contract v2 a file declares its levels (1 to 4; 2021's province,
// district, ward by default, or the two-tier province, commune in force
// since 1 July 2025), a contest is one ballot whose units may elect many
// councils of its level (each unit's council given or inferred), a unit may
// have polling stations outside the file and a round (first, additional,
// re-election). Parse refuses what the law makes impossible, with every
// problem listed, and returns what it merely bounds as [Election.Warnings].
//
// The package does no I/O. An [Election] is loaded once, validated with every
// problem listed, and then compiled into dense integer indexes (stations,
// contests, units, areas) so that the fold in package projections can work
// on slices instead of maps. Every per-contest index is sized by what votes
// in the contest (its voters, their areas), never by the whole file: a 2021
// national file holds about 11,000 council contests. Minutes are checked with [Election.Check], which
// resolves their ids to those indexes and reports every broken rule as a
// [Violation]; the fold then only applies facts.
//
// An *Election is immutable after [Parse] returns it and safe for concurrent
// use.
package tally
