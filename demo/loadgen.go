package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshlens/meshlens/hdr"
)

// LoadConfig is a bounded, open-loop load: requests start at a fixed rate
// whether or not earlier ones have finished, up to MaxInFlight at once, for
// Duration and at most MaxRequests requests.
type LoadConfig struct {
	Target      string // HOST:PORT of the entry service's sidecar
	Host        string // Host header (the entry service's name)
	Mix         []WeightedRequest
	RPS         float64
	Duration    time.Duration
	MaxRequests int
	MaxInFlight int
	// KeepSamples keeps every latency for exact percentiles (the accuracy
	// test); bounded by MaxRequests.
	KeepSamples bool
	// RequestIDPrefix prefixes the x-request-id of every request.
	RequestIDPrefix string
	Seed            uint64
}

// LoadResult is what the load generator saw.
type LoadResult struct {
	Sent, Completed, Errors, Skipped int64
	// Latency holds every completed request's latency in microseconds.
	Latency *hdr.Histogram
	// Samples are the latencies in microseconds, when kept, and IDs the
	// requests' x-request-id in the same order.
	Samples []int64
	IDs     []string
}

// Load runs the load until the duration or the request bound is reached or
// ctx ends, then waits for the requests in flight.
func Load(ctx context.Context, c LoadConfig) (*LoadResult, error) {
	if c.RPS <= 0 {
		return nil, fmt.Errorf("rps: %v must be positive", c.RPS)
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 256
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = int(c.RPS*c.Duration.Seconds()) + 1
	}
	total := 0
	for _, m := range c.Mix {
		total += m.Weight
	}
	if total <= 0 {
		return nil, fmt.Errorf("mix: no request has a positive weight")
	}
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: c.MaxInFlight, MaxConnsPerHost: c.MaxInFlight, IdleConnTimeout: 30 * time.Second},
	}
	defer client.CloseIdleConnections()
	res := &LoadResult{Latency: hdr.New()}
	var mu sync.Mutex
	var completed, errs, skipped atomic.Int64
	sem := make(chan struct{}, c.MaxInFlight)
	var wg sync.WaitGroup
	rng := rand.New(rand.NewPCG(c.Seed, 7))
	interval := time.Duration(float64(time.Second) / c.RPS)
	start := time.Now()
	deadline := start.Add(c.Duration)
	var sent int64
	for i := 0; i < c.MaxRequests; i++ {
		next := start.Add(time.Duration(i) * interval)
		if !next.Before(deadline) {
			break
		}
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			skipped.Add(1) // the mesh is too slow for the rate: count, do not queue
			continue
		}
		m := pick(c.Mix, rng.IntN(total))
		path := strings.ReplaceAll(m.Path, "{id}", fmt.Sprint(rng.IntN(1000)))
		id := fmt.Sprintf("%s%d", c.RequestIDPrefix, i)
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			us, code, err := do(ctx, client, c, m.Method, path, id)
			if err != nil {
				if ctx.Err() == nil {
					errs.Add(1)
				}
				return
			}
			completed.Add(1)
			if code >= 500 {
				errs.Add(1)
			}
			mu.Lock()
			hdr.Record(res.Latency, us)
			if c.KeepSamples {
				res.Samples = append(res.Samples, us)
				res.IDs = append(res.IDs, id)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Sent, res.Completed, res.Errors, res.Skipped = sent, completed.Load(), errs.Load(), skipped.Load()
	return res, nil
}

func pick(mix []WeightedRequest, n int) WeightedRequest {
	for _, m := range mix {
		if n < m.Weight {
			return m
		}
		n -= m.Weight
	}
	return mix[len(mix)-1]
}

// do sends one request and returns its latency in microseconds: from
// before the request is written to after the last byte of the response.
func do(ctx context.Context, client *http.Client, c LoadConfig, method, path, id string) (int64, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Target+path, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Host = c.Host
	req.Header.Set("X-Request-Id", id)
	t := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	us := time.Since(t).Microseconds()
	if err != nil {
		return 0, 0, err
	}
	return us, resp.StatusCode, nil
}
