package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestWriteDir(t *testing.T) {
	dir := t.TempDir()
	ds, err := Generate(testInput())
	if err != nil {
		t.Fatal(err)
	}
	written, err := WriteDir(dir, ds, ProvisioningConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != len(ds)+2 {
		t.Fatalf("wrote %v, want %d dashboards and 2 provisioning files", written, len(ds))
	}
	for _, d := range ds {
		b, err := os.ReadFile(filepath.Join(dir, DashboardsDir, d.File))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := d.JSON()
		if !bytes.Equal(b, want) {
			t.Fatalf("%s on disk differs from the generated dashboard", d.File)
		}
	}

	// The provider loads the dashboards folder by its absolute path.
	var prov providersDoc
	readYAML(t, filepath.Join(dir, dashboardProviderFile), &prov)
	abs, _ := filepath.Abs(filepath.Join(dir, DashboardsDir))
	if got := prov.Providers[0].Options["path"]; got != abs {
		t.Fatalf("provider path = %v, want %s", got, abs)
	}

	// Regenerating the same input writes nothing; a changed file is
	// rewritten.
	if again, err := WriteDir(dir, ds, ProvisioningConfig{}); err != nil || len(again) != 0 {
		t.Fatalf("second WriteDir wrote %v (%v), want nothing", again, err)
	}
	stale := filepath.Join(dir, DashboardsDir, ds[0].File)
	if err := os.WriteFile(stale, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := WriteDir(dir, ds, ProvisioningConfig{})
	if err != nil || !reflect.DeepEqual(again, []string{filepath.Join(DashboardsDir, ds[0].File)}) {
		t.Fatalf("after editing %s WriteDir wrote %v (%v)", ds[0].File, again, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, DashboardsDir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestProvisioningGolden(t *testing.T) {
	files, err := provisioningFiles(t.TempDir(), ProvisioningConfig{
		PrometheusURL:  "http://prometheus:9090",
		JaegerURL:      "http://meshlens-collector:16686",
		DashboardsPath: "/var/lib/grafana/dashboards/meshlens",
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range files {
		path := filepath.Join("testdata", "provisioning", filepath.Base(filepath.Dir(name))+".yaml")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s; run go test ./dashboards -update", name, path)
		}
	}
	var ds datasourcesDoc
	if err := yaml.Unmarshal(files[datasourcesFile], &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 2 || ds.Datasources[0].UID != PrometheusUID || ds.Datasources[1].UID != JaegerUID ||
		ds.Datasources[1].URL != "http://meshlens-collector:16686" {
		t.Fatalf("data sources = %+v", ds.Datasources)
	}
}

func TestProvisioningRejectsBadURL(t *testing.T) {
	_, err := provisioningFiles(t.TempDir(), ProvisioningConfig{JaegerURL: "collector:16686"})
	if err == nil || !strings.Contains(err.Error(), "jaeger_url") {
		t.Fatalf("err = %v, want one naming jaeger_url", err)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// fakeGrafana checks the request shapes of Grafana's HTTP API the way
// Grafana does (POST /api/dashboards/db with a JSON body holding the
// dashboard, folderUid and overwrite; GET and POST /api/folders; a bearer
// token) and keeps what it is sent.
type fakeGrafana struct {
	t          *testing.T
	token      string
	mu         sync.Mutex
	folders    map[string]string
	dashboards map[string]map[string]any
	pushes     []string
}

func (g *fakeGrafana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"invalid API key"}`))
		return
	}
	fail := func(status int, msg string) {
		g.t.Errorf("fake grafana: %s %s: %s", r.Method, r.URL.Path, msg)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/folders/"):
		uid := strings.TrimPrefix(r.URL.Path, "/api/folders/")
		title, ok := g.folders[uid]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"folder not found"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"uid": uid, "title": title})
	case r.Method == http.MethodPost && r.URL.Path == "/api/folders":
		var f struct{ UID, Title string }
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil || f.UID == "" || f.Title == "" {
			fail(http.StatusBadRequest, "folder needs uid and title")
			return
		}
		g.folders[f.UID] = f.Title
		_ = json.NewEncoder(w).Encode(map[string]any{"uid": f.UID, "title": f.Title})
	case r.Method == http.MethodPost && r.URL.Path == "/api/dashboards/db":
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			fail(http.StatusUnsupportedMediaType, "content type "+ct)
			return
		}
		var req struct {
			Dashboard map[string]any `json:"dashboard"`
			FolderUID string         `json:"folderUid"`
			Overwrite bool           `json:"overwrite"`
			Message   string         `json:"message"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			fail(http.StatusBadRequest, "bad body: "+err.Error())
			return
		}
		uid, _ := req.Dashboard["uid"].(string)
		title, _ := req.Dashboard["title"].(string)
		if uid == "" || title == "" || req.Dashboard["panels"] == nil {
			fail(http.StatusBadRequest, "dashboard needs uid, title and panels")
			return
		}
		if id, ok := req.Dashboard["id"]; ok && id != nil {
			fail(http.StatusBadRequest, "a new dashboard must not carry an id")
			return
		}
		if _, ok := g.folders[req.FolderUID]; !ok {
			fail(http.StatusBadRequest, "folder "+req.FolderUID+" does not exist")
			return
		}
		if _, exists := g.dashboards[uid]; exists && !req.Overwrite {
			w.WriteHeader(http.StatusPreconditionFailed)
			_, _ = w.Write([]byte(`{"message":"A dashboard with the same uid already exists","status":"name-exists"}`))
			return
		}
		g.dashboards[uid] = req.Dashboard
		g.pushes = append(g.pushes, uid)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": len(g.dashboards), "uid": uid, "url": "/d/" + uid, "status": "success", "version": 1})
	default:
		fail(http.StatusNotFound, "unexpected call")
	}
}

func TestWriterPushesToGrafana(t *testing.T) {
	g := &fakeGrafana{t: t, token: "glsa_test", folders: map[string]string{}, dashboards: map[string]map[string]any{}}
	srv := httptest.NewServer(g)
	defer srv.Close()

	w, err := NewWriter(WriterConfig{Dir: t.TempDir(), Grafana: GrafanaConfig{URL: srv.URL, Token: "glsa_test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := Input{Services: []Service{{Name: "frontend", HasProxy: true}, {Name: "checkout", HasProxy: true}}}
	uids, err := w.Update(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"meshlens-overview", "meshlens-slo", "meshlens-svc-checkout", "meshlens-svc-frontend"}
	if !reflect.DeepEqual(uids, want) || len(g.pushes) != 4 || g.folders[DefaultFolder] != DefaultFolder {
		t.Fatalf("first update: uids %v, pushes %v, folders %v", uids, g.pushes, g.folders)
	}

	// Nothing changed: nothing is written or pushed.
	if uids, err := w.Update(ctx, in); err != nil || len(uids) != 0 || len(g.pushes) != 4 {
		t.Fatalf("unchanged update: uids %v (%v), pushes %v", uids, err, g.pushes)
	}

	// A new service appears: its dashboard is added, the overview and SLO
	// dashboards (which list it) are updated, the others are left alone.
	in.Services = append(in.Services, Service{Name: "payments", HasProxy: true})
	g.pushes = nil
	uids, err = w.Update(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"meshlens-overview", "meshlens-slo", "meshlens-svc-payments"}
	if !reflect.DeepEqual(uids, want) || !reflect.DeepEqual(g.pushes, want) {
		t.Fatalf("new service: uids %v, pushes %v, want %v", uids, g.pushes, want)
	}
	if len(g.dashboards) != 5 {
		t.Fatalf("grafana holds %d dashboards, want 5", len(g.dashboards))
	}
}

func TestGrafanaPushRefused(t *testing.T) {
	g := &fakeGrafana{t: t, token: "right", folders: map[string]string{}, dashboards: map[string]map[string]any{}}
	srv := httptest.NewServer(g)
	defer srv.Close()
	c, err := NewGrafanaClient(GrafanaConfig{URL: srv.URL, Token: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	err = c.EnsureFolder(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "invalid API key") {
		t.Fatalf("err = %v, want the 401 with Grafana's message", err)
	}
	if _, err := NewGrafanaClient(GrafanaConfig{URL: "grafana:3000"}); err == nil {
		t.Fatal("a URL without scheme was accepted")
	}
}
