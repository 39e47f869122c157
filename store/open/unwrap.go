package open

import "github.com/meshlens/meshlens/store"

// Unwrap returns the store the retention loop wraps, so that its
// compactions (store.CompactionsOf) are used through the wrapper.
func (r *retained) Unwrap() store.Store { return r.Store }
