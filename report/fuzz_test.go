package report

import (
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// FuzzFromRollups feeds arbitrary stored histograms and keys to the report
// builder: it returns a report or an error, never panics.
func FuzzFromRollups(f *testing.F) {
	h := hdr.New()
	hdr.Record(h, 1234)
	good, err := hdr.Encode(h)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "svc", "inbound", "peer", "2xx")
	f.Add("HISTFAAAACl4nJNpmSzMwMDAwQABzFCaEUzOmNVg/wEiIpCtzgAAVCwDSQ==", "a", "outbound", "", "5xx")
	f.Add("", "", "", "", "")
	f.Add("not base64!", "x", "sideways", "y", "9xx")
	f.Fuzz(func(t *testing.T, total, service, dir, peer, class string) {
		rs := []store.Rollup{
			{Minute: t0, Key: model.HopKey{Service: service, Direction: model.Direction(dir), Peer: peer, StatusClass: class}, Total: total},
			{Minute: t0, Key: model.HopKey{Service: "b", Direction: model.Inbound, Peer: service, StatusClass: "2xx"}, Total: good},
		}
		r, err := FromRollups(rs, Options{From: t0, To: t0.Add(time.Minute), Step: time.Minute})
		if err != nil {
			return
		}
		for _, write := range Formats {
			if err := write.Write(discard{}, r); err != nil && total == good {
				t.Errorf("writing a report built from a good histogram failed: %v", err)
			}
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
