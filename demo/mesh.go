package demo

import "time"

// SampleMesh is the demo's mesh: a shop.
//
//	loadgen → frontend ─┬→ catalog
//	                    └→ checkout ─┬→ inventory
//	                                 └→ payments   (degrades midway)
//
// Latencies are log-normal with a long tail; every service fails now and
// then. At the degradation payments' tail grows tenfold and its error rate
// jumps, which shows in checkout's and frontend's tails and error budgets.
func SampleMesh() []ServiceSpec {
	ms := time.Millisecond
	return []ServiceSpec{
		{
			Name: "frontend",
			Routes: []Route{
				{Method: "GET", Path: "/product/", Calls: []Call{{"catalog", "GET", "/items/{id}"}}},
				{Method: "POST", Path: "/checkout", Calls: []Call{{"catalog", "GET", "/items/{id}"}, {"checkout", "POST", "/orders"}}},
			},
			Normal: Behaviour{Latency: Latency{Median: 2 * ms, Sigma: 0.4, TailProb: 0.01, TailFactor: 6}, ErrorRate: 0.001},
		},
		{
			Name:   "catalog",
			Routes: []Route{{Method: "GET", Path: "/items/"}},
			Normal: Behaviour{Latency: Latency{Median: 5 * ms, Sigma: 0.5, TailProb: 0.01, TailFactor: 8}, ErrorRate: 0.002},
		},
		{
			Name: "checkout",
			Routes: []Route{{Method: "POST", Path: "/orders", Calls: []Call{
				{"inventory", "GET", "/stock/{id}"}, {"payments", "POST", "/charge"},
			}}},
			Normal: Behaviour{Latency: Latency{Median: 4 * ms, Sigma: 0.4, TailProb: 0.005, TailFactor: 6}, ErrorRate: 0.002},
		},
		{
			Name:   "inventory",
			Routes: []Route{{Method: "GET", Path: "/stock/"}},
			Normal: Behaviour{Latency: Latency{Median: 3 * ms, Sigma: 0.4, TailProb: 0.005, TailFactor: 5}, ErrorRate: 0.001},
		},
		{
			Name:     "payments",
			Routes:   []Route{{Method: "POST", Path: "/charge"}},
			Normal:   Behaviour{Latency: Latency{Median: 12 * ms, Sigma: 0.35, TailProb: 0.005, TailFactor: 4}, ErrorRate: 0.003},
			Degraded: &Behaviour{Latency: Latency{Median: 18 * ms, Sigma: 0.8, TailProb: 0.05, TailFactor: 12}, ErrorRate: 0.05},
		},
	}
}

// Entry is where the load generator sends requests: the front service and
// the mix of requests it sends.
var Entry = struct {
	Service string
	Mix     []WeightedRequest
}{
	Service: "frontend",
	Mix: []WeightedRequest{
		{Weight: 7, Method: "GET", Path: "/product/{id}"},
		{Weight: 3, Method: "POST", Path: "/checkout"},
	},
}

// WeightedRequest is one kind of request in the load mix.
type WeightedRequest struct {
	Weight       int
	Method, Path string
}
