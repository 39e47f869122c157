package sqlite_test

import (
	"context"
	"testing"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/sqlite"
	"github.com/meshlens/meshlens/store/storetest"
)

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ObserveServices(ctx, []store.Service{{Name: "a"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = sqlite.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svcs, err := st.Services(ctx)
	if err != nil || len(svcs) != 1 {
		t.Fatalf("after reopen: %v, %v", svcs, err)
	}
}
