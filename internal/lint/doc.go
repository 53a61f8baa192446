// Package lint holds no code: its test checks the formatting of the tree.
package lint
