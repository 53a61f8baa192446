// Package events holds the minutes event as it travels: its JSON form (the
// public contract, CONTRACT §3), its binary form (what the gateway stores on
// the stream), the subjects it is published on, the JetStream stream that
// keeps it, and a publisher.
//
// # Subjects
//
// A station's minutes for a contest are published on (CONTRACT §7 v2)
//
//	tally.<election>.minutes.<province>.<station>.<contest>
//
// where <province> is the station's top-level area, so that a NATS
// permission can allow one station to publish only on
// tally.<election>.minutes.<province>.<station>.* and the minutes can be
// split by province into partitions that share no aggregate. The stream
// captures tally.<election>.minutes.>. A stream created before v2 may hold
// subjects of the v1 form tally.<election>.minutes.<district>.<ward>.<station>.<contest>:
// they stay readable, the station being the token before the contest.
// The fold rejects, with rule subject, minutes whose payload does not name
// the station and contest of their subject, or whose subject names a
// province that is not the station's.
//
// # Payloads
//
// The gateway converts JSON once and publishes the binary form, which the
// fold decodes without allocating. Stations publishing straight to NATS may
// publish the JSON form; the fold tells the two apart by the first byte
// (the binary form starts with [BinaryMagic], never a JSON character).
//
// The binary form is canonical: votes are sorted by candidate id, so two
// submissions with the same content encode to the same bytes. Its hash is
// the content identity used for the Nats-Msg-Id and for duplicate and
// conflict detection.
//
// JSON minutes are read in one pass without allocating when they are
// written the usual way (jsonfast.go); anything unusual (an escape, a
// null, a repeated or unknown member, a number that is not a plain
// integer) goes to the full decoder, which names every problem.
//
// # Admission
//
// One function decides whether minutes count, as far as that needs no
// history: [Admit] decodes a message, checks that its payload names the
// station and contest of its subject, then calls [AdmitDecoded], which
// checks the rules of CONTRACT §3 and a sealed station's signature. The
// live fold and the audit fold call Admit for every message of the stream;
// the HTTP gateway calls AdmitDecoded for each minutes of a request (the
// subject does not exist yet: the gateway builds it from admitted minutes).
// What needs history (stale, duplicate, conflict) is the fold's.
package events
