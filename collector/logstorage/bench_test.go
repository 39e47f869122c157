package logstorage

import (
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

// BenchmarkQueueItem is one item's round through the log as the exporter's
// persistent sending queue makes it: the item and the queue's metadata set
// (Offer), the metadata set and the item read back (Read), the metadata set
// and the item deleted (done). Items of 23 KB are 100 spans as rows; the
// default segment and cache sizes.
//
//	go test -run '^$' -bench QueueItem -benchmem ./collector/logstorage/
func BenchmarkQueueItem(b *testing.B) {
	l, err := openLog(b.TempDir(), logOptions{segmentSize: DefaultSegmentSize, cacheSize: DefaultCacheSize}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer l.close()
	item := make([]byte, 23_000)
	meta := make([]byte, 300)
	b.SetBytes(int64(len(item)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		key := strconv.Itoa(i)
		i++
		steps := [][]*storage.Operation{
			{storage.SetOperation("meta", meta), storage.SetOperation(key, item)},
			{storage.SetOperation("meta", meta), storage.GetOperation(key)},
			{storage.SetOperation("meta", meta), storage.DeleteOperation(key)},
		}
		for _, ops := range steps {
			if err := l.batch(ops); err != nil {
				b.Fatal(err)
			}
		}
	}
}
