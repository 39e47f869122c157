package slo

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// DashboardUID is the Grafana UID of a service's dashboard, shared by the
// dashboards generator and the links in alerts: "meshlens-svc-" followed by
// the service name lowercased with every character outside [a-z0-9-]
// replaced by "-". Grafana UIDs hold at most 40 characters: a longer result
// keeps its first 31 characters, then "-" and 8 hex digits of the FNV-1a
// hash of the service name.
func DashboardUID(service string) string {
	var b strings.Builder
	b.WriteString("meshlens-svc-")
	for _, r := range strings.ToLower(service) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	uid := b.String()
	if len(uid) <= 40 {
		return uid
	}
	h := fnv.New32a()
	h.Write([]byte(service))
	return fmt.Sprintf("%s-%08x", uid[:31], h.Sum32())
}
