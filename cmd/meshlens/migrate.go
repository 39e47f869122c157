package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/meshlens/meshlens/store/postgres"
)

func init() {
	register("migrate", command{summary: "apply or revert the PostgreSQL schema (up, down, status)", run: runMigrate})
}

const migrateUsage = `usage: meshlens migrate up|down|status [--database-url URL] [--to N]

  up      apply every migration not yet applied
  down    revert the newest migration (--to N: revert down to version N; 0 drops all meshlens tables and data)
  status  list the migrations and which are applied

The database URL comes from --database-url or $MESHLENS_DATABASE_URL.
`

func runMigrate(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, migrateUsage)
		return 2
	}
	action := args[0]
	fs := flag.NewFlagSet("migrate "+action, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, migrateUsage); fs.PrintDefaults() }
	url := fs.String("database-url", os.Getenv("MESHLENS_DATABASE_URL"), "PostgreSQL URL (default $MESHLENS_DATABASE_URL)")
	to := fs.Int("to", -1, "down: the version to revert to (default: one below the current)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "meshlens migrate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *url == "" {
		fmt.Fprintln(os.Stderr, "meshlens migrate: --database-url (or $MESHLENS_DATABASE_URL) is required")
		return 2
	}
	switch action {
	case "up", "down", "status":
	default:
		fmt.Fprintf(os.Stderr, "meshlens migrate: unknown action %q\n\n%s", action, migrateUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	m, err := postgres.NewMigrator(ctx, *url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens migrate: %v\n", err)
		return 1
	}
	defer m.Close()
	if err := migrate(ctx, m, action, *to); err != nil {
		fmt.Fprintf(os.Stderr, "meshlens migrate %s: %v\n", action, err)
		return 1
	}
	return 0
}

func migrate(ctx context.Context, m *postgres.Migrator, action string, to int) error {
	switch action {
	case "up":
		done, err := m.Up(ctx)
		for _, v := range done {
			fmt.Printf("applied %d\n", v)
		}
		if err == nil && len(done) == 0 {
			fmt.Println("schema is up to date")
		}
		return err
	case "down":
		if to < 0 {
			_, have, err := m.Status(ctx)
			if err != nil {
				return err
			}
			to = max(have-1, 0)
		}
		done, err := m.Down(ctx, to)
		for _, v := range done {
			fmt.Printf("reverted %d\n", v)
		}
		if err == nil && len(done) == 0 {
			fmt.Println("nothing to revert")
		}
		return err
	default:
		st, have, err := m.Status(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
		for _, s := range st {
			applied := "no"
			if !s.AppliedAt.IsZero() {
				applied = s.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\n", s.Version, s.Name, applied)
		}
		tw.Flush()
		fmt.Printf("database at version %d, this build knows %d\n", have, len(st))
		return nil
	}
}
