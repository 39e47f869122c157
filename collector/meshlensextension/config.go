package meshlensextension

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
)

// Config is the meshlens extension's configuration: where the store lives
// and where the metrics and query servers listen.
type Config struct {
	// DataDir is the embedded SQLite store's directory, used when
	// DatabaseURL is empty.
	DataDir string `mapstructure:"data_dir"`
	// DatabaseURL selects PostgreSQL (postgres://...).
	DatabaseURL configopaque.String `mapstructure:"database_url"`
	// Retention is how long spans and rollups are kept.
	Retention time.Duration `mapstructure:"retention"`
	// IngestToken, when set, is the bearer token every sender must present
	// (meshlens_hdr receiver and, through `auth: authenticator: meshlens`,
	// the otlp receiver).
	IngestToken configopaque.String `mapstructure:"ingest_token"`
	// Metrics is the Prometheus endpoint (/metrics).
	Metrics ServerConfig `mapstructure:"metrics"`
	// API is the query API endpoint (/api/v1/..., and the Jaeger-compatible
	// /api/...).
	API APIServerConfig `mapstructure:"api"`
}

// ServerConfig is one HTTP listener.
type ServerConfig struct {
	Endpoint string `mapstructure:"endpoint"`
}

// APIServerConfig is the query API listener.
type APIServerConfig struct {
	Endpoint string `mapstructure:"endpoint"`
	// AuthToken, when set, is the bearer token every query must present.
	AuthToken configopaque.String `mapstructure:"auth_token"`
}

// Validate checks the configuration; errors name the field.
func (c *Config) Validate() error {
	var errs []error
	if c.DatabaseURL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must be set when database_url is empty"))
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(string(c.DatabaseURL))
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, errors.New("database_url: must be a postgres:// or postgresql:// URL"))
		}
	}
	if c.Retention < time.Hour {
		errs = append(errs, fmt.Errorf("retention: %v is below 1h", c.Retention))
	}
	if err := checkEndpoint(c.Metrics.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("metrics.endpoint: %w", err))
	}
	if err := checkEndpoint(c.API.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("api.endpoint: %w", err))
	}
	if err := checkToken(c.IngestToken); err != nil {
		errs = append(errs, fmt.Errorf("ingest_token: %w", err))
	}
	if err := checkToken(c.API.AuthToken); err != nil {
		errs = append(errs, fmt.Errorf("api.auth_token: %w", err))
	}
	return errors.Join(errs...)
}

func checkEndpoint(ep string) error {
	if ep == "" {
		return errors.New("must not be empty")
	}
	if _, _, err := net.SplitHostPort(ep); err != nil {
		return fmt.Errorf("%q is not HOST:PORT: %w", ep, err)
	}
	return nil
}

func checkToken(t configopaque.String) error {
	if t == "" {
		return nil
	}
	if len(t) < 16 {
		return errors.New("must be at least 16 characters")
	}
	if strings.ContainsAny(string(t), " \t\r\n") {
		return errors.New("must not contain white space")
	}
	return nil
}
