//go:build !race

package client

// raceEnabled is set when the race detector, which slows the real server
// about twentyfold, is on: long tests then run smaller.
const raceEnabled = false
