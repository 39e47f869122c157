package storeexporter

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the meshlens_store exporter's configuration.
type Config struct {
	// Extension names the meshlens extension that holds the store.
	Extension component.ID `mapstructure:"extension"`
	// RedactAttributes lists attribute-key suffixes removed from spans
	// before they are stored (authorization headers, cookies, API keys).
	RedactAttributes []string `mapstructure:"redact_attributes"`

	// QueueConfig is the sending queue; with `storage` set it is persistent
	// on disk, so data survives a crash and waits while the store is down.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// RetryConfig governs retries of failed store writes. The default never
	// gives up (max_elapsed_time 0): data waits in the bounded queue until
	// the store is back.
	RetryConfig   configretry.BackOffConfig    `mapstructure:"retry_on_failure"`
	TimeoutConfig exporterhelper.TimeoutConfig `mapstructure:",squash"` // timeout: per store write, like the stock exporters
}

// Validate checks the configuration; errors name the field.
func (c *Config) Validate() error {
	var errs []error
	if c.Extension.Type().String() == "" {
		errs = append(errs, errors.New("extension: must name the meshlens extension"))
	}
	for i, s := range c.RedactAttributes {
		if s == "" {
			errs = append(errs, fmt.Errorf("redact_attributes[%d]: must not be empty", i))
		}
	}
	// sending_queue, retry_on_failure and timeout validate themselves.
	return errors.Join(errs...)
}
