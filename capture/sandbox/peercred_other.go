//go:build !linux

package sandbox

import "net"

// peerCredential is only known on Linux.
func peerCredential(net.Conn) string { return "" }
