// Package e2e holds process-level tests of the meshlens collector: they run
// bin/meshlens collector, bin/meshproxy, Toxiproxy and a real PostgreSQL as
// separate processes and break them (a database that goes away, a collector
// killed with SIGKILL, a collector out of memory) to show that what the
// collector acknowledged is stored once, and that its refusals are
// retryable. The package holds only tests; `make test` builds the binaries
// first.
package e2e
