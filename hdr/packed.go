package hdr

import (
	"fmt"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshlens/meshlens/model"
)

// Packed is HdrHistogram's sparse variant: the same buckets without a dense
// counts array, for merging many histograms in memory.
type Packed = hdrhistogram.PackedHistogram

// NewPacked returns an empty sparse histogram with the meshlens geometry.
func NewPacked() *Packed {
	return hdrhistogram.NewPacked(model.LowestTrackableMicros, model.HighestTrackableMicros, model.SignificantFigures)
}

// DecodePacked is Decode into a sparse histogram: the same header checks,
// without allocating the dense counts array.
func DecodePacked(s string) (*Packed, error) {
	if err := checkEncoded(s); err != nil {
		return nil, err
	}
	p, err := hdrhistogram.DecodePacked([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return p, nil
}

// EncodePacked returns the V2 compressed encoding of p as base64 text, byte
// for byte what Encode gives for the dense histogram with the same counts.
func EncodePacked(p *Packed) (string, error) {
	b, err := p.Encode()
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return string(b), nil
}

// RecordPacked is Record for a sparse histogram: one latency in
// microseconds, clamped into the trackable range; it reports whether the
// value was clamped.
func RecordPacked(p *Packed, micros int64) (clamped bool) {
	if micros < model.LowestTrackableMicros {
		micros = model.LowestTrackableMicros
	}
	if micros > model.HighestTrackableMicros {
		micros = model.HighestTrackableMicros
		clamped = true
	}
	// The value is within the histogram's range, so RecordValue cannot fail.
	_ = p.RecordValue(micros)
	return clamped
}
