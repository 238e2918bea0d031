// Package vmtests holds director's end-to-end tests: real processes in
// namespace topologies built by package topo. They need root and skip
// without it.
package vmtests
