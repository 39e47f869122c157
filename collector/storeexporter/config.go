package storeexporter

import (
	"errors"
	"fmt"
	"time"

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

	// WriteThrough writes spans to the store before they are acknowledged,
	// in groups, while the store keeps up; the sending queue takes them
	// only when it does not.
	WriteThrough WriteThroughConfig `mapstructure:"write_through"`
}

// WriteThroughConfig is the traces exporter's write-through: each arriving
// request waits until its group of requests is written to the store, and
// is acknowledged then, so nothing passes through the sending queue while
// the store is healthy. A group that fails or takes longer than Timeout
// goes to the sending queue instead (acknowledged once queued), and so
// does everything after it until the queue has written something again.
type WriteThroughConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Linger is how long the first request of a group waits for others
	// before the group is written: the latency added to every
	// acknowledgement, for fewer and larger writes.
	Linger time.Duration `mapstructure:"linger"`
	// MaxSpans writes a group as soon as it holds this many spans.
	MaxSpans int `mapstructure:"max_spans"`
	// Timeout bounds one group's write; past it the group goes to the
	// sending queue.
	Timeout time.Duration `mapstructure:"timeout"`
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
	if w := c.WriteThrough; w.Enabled {
		if w.Linger < 0 || w.Linger > time.Minute {
			errs = append(errs, fmt.Errorf("write_through::linger: %v is not between 0 and 1m", w.Linger))
		}
		if w.MaxSpans <= 0 {
			errs = append(errs, fmt.Errorf("write_through::max_spans: %d must be positive", w.MaxSpans))
		}
		if w.Timeout <= 0 {
			errs = append(errs, fmt.Errorf("write_through::timeout: %v must be positive", w.Timeout))
		}
	}
	// sending_queue, retry_on_failure and timeout validate themselves.
	return errors.Join(errs...)
}
