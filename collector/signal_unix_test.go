//go:build unix

package collector

import "syscall"

// interruptSignal stops a meshproxy gracefully (it flushes its telemetry).
var interruptSignal = syscall.SIGTERM
