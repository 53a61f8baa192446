package projections

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultNode is the name of a tally node started without one. Its fold
// consumer keeps the name tally used before nodes existed, so an existing
// deployment resumes with the consumer it already has.
const DefaultNode = "default"

// maxNodeName bounds a node name: it becomes part of a JetStream consumer
// name, which nats-server stores as a directory name.
const maxNodeName = 64

// FoldConsumer returns the durable consumer name of node's fold:
// "tally-fold" for DefaultNode (or ""), "tally-fold-<node>" otherwise.
//
// INVARIANT: distinct node names give distinct consumer names, so a node
// that deletes and recreates its own consumer at start (Aggregator.Run)
// never touches another node's.
func FoldConsumer(node string) (string, error) {
	if err := CheckNodeName(node); err != nil {
		return "", err
	}
	if node == "" || node == DefaultNode {
		return "tally-fold", nil
	}
	return "tally-fold-" + node, nil
}

// PartitionConsumer returns the durable consumer name of node's fold of
// partition p out of n: FoldConsumer(node) when n is 1, else
// FoldConsumer(node) + "-<p>" (tally-fold-<p>, tally-fold-<node>-<p>).
// Each lives on its own partition's stream, where distinct nodes still
// give distinct names.
func PartitionConsumer(node string, p, n int) (string, error) {
	name, err := FoldConsumer(node)
	if err != nil || n <= 1 {
		return name, err
	}
	return name + "-" + strconv.Itoa(p), nil
}

// CheckNodeName reports whether node may name a tally node: 1 to 64 ASCII
// letters, digits, '-' or '_' ("" stands for DefaultNode). Anything else
// could not be part of a consumer name (NATS forbids '.', '*', '>' and
// white space there, and the server uses the name as a file name).
func CheckNodeName(node string) error {
	if node == "" {
		return nil
	}
	if len(node) > maxNodeName {
		return fmt.Errorf("node name %q: longer than %d characters", node, maxNodeName)
	}
	if i := strings.IndexFunc(node, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}); i >= 0 {
		return fmt.Errorf("node name %q: character %q at %d is not allowed (use ASCII letters, digits, '-' and '_')", node, node[i], i)
	}
	return nil
}
