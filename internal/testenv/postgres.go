package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/internal/freeport"
)

// PostgresURLEnv names a PostgreSQL URL the tests use instead of looking for
// one.
const PostgresURLEnv = "MESHLENS_TEST_DATABASE_URL"

// localPostgresURL is the PostgreSQL these machines run.
const localPostgresURL = "postgres://127.0.0.1:5432/test?sslmode=disable"

var (
	postgresOnce sync.Once
	postgresURL  string
	postgresErr  error
)

// Postgres returns the URL of a PostgreSQL server for tests: $MESHLENS_TEST_DATABASE_URL
// when set, else 127.0.0.1:5432 database "test" when it answers, else a
// throwaway cluster started from the Debian postgresql package for this test
// process (stopped and removed when the process exits). A test that cannot
// have one fails. Other tests share the server: use PostgresDatabase or
// PostgresSchema for a place of your own.
func Postgres(t testing.TB) string {
	t.Helper()
	postgresOnce.Do(func() { postgresURL, postgresErr = findPostgres() })
	if postgresErr != nil {
		t.Fatalf("testenv: no PostgreSQL: %v", postgresErr)
	}
	return postgresURL
}

func findPostgres() (string, error) {
	if u := os.Getenv(PostgresURLEnv); u != "" {
		if err := pingPostgres(u); err != nil {
			return "", fmt.Errorf("$%s: %w", PostgresURLEnv, err)
		}
		return u, nil
	}
	if err := pingPostgres(localPostgresURL); err == nil {
		return localPostgresURL, nil
	}
	return startPostgres()
}

func pingPostgres(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// startPostgres runs initdb and pg_ctl from the newest installed PostgreSQL
// in a temporary directory on a free loopback port. As root it runs them as
// the postgres user (PostgreSQL refuses to run as root). A watchdog process
// stops the cluster and removes the directory once this process is gone.
func startPostgres() (string, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		return "", fmt.Errorf("nothing answers on 127.0.0.1:5432 and no /usr/lib/postgresql/*/bin/pg_ctl: install the postgresql package (make test-deps)")
	}
	sort.Slice(bins, func(i, j int) bool { return pgMajor(bins[i]) > pgMajor(bins[j]) })
	binDir := filepath.Dir(bins[0])
	dir, err := os.MkdirTemp("", "meshlens-pg-")
	if err != nil {
		return "", err
	}
	asUser := func(name string, args ...string) *exec.Cmd {
		return exec.Command(filepath.Join(binDir, name), args...)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
		asUser = func(name string, args ...string) *exec.Cmd {
			c := exec.Command(filepath.Join(binDir, name), args...)
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			c.Dir = dir
			return c
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := asUser("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freeport.Port()
	if err != nil {
		return "", err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=200", port, dir)
	if out, err := asUser("pg_ctl", "start", "-D", data, "-w", "-t", "60", "-l", filepath.Join(dir, "log"), "-o", opts).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return "", fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	// The watchdog outlives a test binary killed by a timeout too.
	stop := asUser("pg_ctl", "stop", "-D", data, "-m", "immediate")
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s; rm -rf %s",
		os.Getpid(), shellJoin(stop.Args), dir)
	if os.Geteuid() == 0 {
		script = fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; runuser -u postgres -- %s; rm -rf %s",
			os.Getpid(), shellJoin(stop.Args), dir)
	}
	watchdog := exec.Command("sh", "-c", script)
	watchdog.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := watchdog.Start(); err != nil {
		return "", fmt.Errorf("start watchdog: %w", err)
	}
	go watchdog.Wait() //nolint:errcheck // reaps the watchdog if it ends first
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect to the throwaway cluster: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE test"); err != nil {
		return "", fmt.Errorf("create database test: %w", err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable", port), nil
}

func pgMajor(pgCtl string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(pgCtl))))
	return n
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// PostgresDatabase creates a database of its own for the test on the server
// Postgres finds (named meshlens_test_<random>), drops it when the test ends,
// and returns its URL.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	base := Postgres(t)
	name := "meshlens_test_" + randomSuffix(t)
	adminExec(t, base, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		adminExec(t, base, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL URL %q: %v", base, err)
	}
	u.Path = "/" + name
	return u.String()
}

// PostgresSchema creates a schema of its own for the test in the database
// Postgres finds (named meshlens_test_<random>), drops it with everything in
// it when the test ends, and returns a URL whose search_path is that schema.
// Cheaper than PostgresDatabase.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := Postgres(t)
	name := "meshlens_test_" + randomSuffix(t)
	adminExec(t, base, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		adminExec(t, base, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL URL %q: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func adminExec(t testing.TB, u, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("testenv: connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("testenv: %s: %v", sql, err)
	}
}

func randomSuffix(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
