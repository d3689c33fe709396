package sandbox

import (
	"net"
	"strconv"
	"syscall"
)

// peerCredential returns "uid:N" for the process at the other end of a
// unix socket connection, as the kernel reports it (SO_PEERCRED), or "".
func peerCredential(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ""
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ""
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return ""
	}
	return "uid:" + strconv.FormatUint(uint64(cred.Uid), 10)
}
