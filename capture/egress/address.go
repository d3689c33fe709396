package egress

import "net/netip"

// isPublic reports whether a is a public unicast address, the only kind the
// proxy reaches without AllowPrivate. It errs on the side of refusing: besides
// what netip.Addr's predicates cover, it refuses "this network", carrier-grade
// NAT, IETF assignments, documentation, benchmarking, reserved and broadcast
// IPv4 space, IPv6 site-local and documentation space, and IPv6 forms that
// embed an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4) whose
// IPv4 part is not public.
func isPublic(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	if a.Is4() {
		return isPublic4(a.As4())
	}
	if a.Zone() != "" {
		return false
	}
	b := a.As16()
	switch {
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0: // fec0::/10 site-local
		return false
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8: // 2001:db8::/32
		return false
	case isZero(b[:12]): // ::/96 IPv4-compatible
		return isPublic4([4]byte{b[12], b[13], b[14], b[15]})
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b: // 64:ff9b::/32
		if isZero(b[4:12]) { // 64:ff9b::/96, well-known NAT64
			return isPublic4([4]byte{b[12], b[13], b[14], b[15]})
		}
		return false // 64:ff9b:1::/48 local-use NAT64 maps to whatever the site chose
	case b[0] == 0x20 && b[1] == 0x02: // 2002::/16 6to4
		return isPublic4([4]byte{b[2], b[3], b[4], b[5]})
	}
	return true
}

func isPublic4(b [4]byte) bool {
	a := netip.AddrFrom4(b)
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	switch {
	case b[0] == 0: // 0.0.0.0/8 this network
		return false
	case b[0] == 100 && b[1]&0xc0 == 64: // 100.64.0.0/10 carrier-grade NAT
		return false
	case b[0] == 192 && b[1] == 0 && (b[2] == 0 || b[2] == 2): // 192.0.0.0/24, 192.0.2.0/24
		return false
	case b[0] == 198 && b[1]&0xfe == 18: // 198.18.0.0/15 benchmarking
		return false
	case b[0] == 198 && b[1] == 51 && b[2] == 100, b[0] == 203 && b[1] == 0 && b[2] == 113: // documentation
		return false
	case b[0] >= 240: // 240.0.0.0/4 reserved, and broadcast
		return false
	}
	return true
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
