// Package sandbox is the sandbox capture surface: what agents do to and
// inside their containers.
//
// DockerProxy sits in front of a Docker Engine API socket (agents set
// DOCKER_HOST to it) and records one sandbox event per container lifecycle
// call — create, start, stop, kill, restart, pause, unpause, remove, rename —
// per exec (create and start) and per `docker cp`. Everything else (ping,
// images, logs, event streams) is relayed unchanged, and so are the
// hijacked connections of attach and exec start, as raw streams in both
// directions.
//
// Each call is recorded when the Engine has answered and before the client
// sees the answer. A container's image and name are learned when it is
// created through the proxy and remembered (bounded) for its later calls;
// calls about containers created elsewhere name the container as given.
// Exec start names only the exec instance, so it is linked to its container
// and command through the exec create the proxy saw.
//
// Watcher records file creates, writes, removes and renames under a
// sandbox's directory, coalescing bursts of writes to one event per file per
// window. Writes are counted as the kernel reports them, and it merges
// identical notifications nobody has read yet, so the count is a lower
// bound of the write calls. A new subdirectory is watched as soon as its
// create is seen and scanned for what was made in it before; what was made
// and removed again in that instant is not seen.
package sandbox
