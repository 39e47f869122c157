//go:build !unix

package logstorage

// lockDir does not lock on this platform.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
