package logstorage

import (
	"errors"
	"fmt"
)

// Config is the meshlens_log_storage extension's configuration.
type Config struct {
	// Directory holds one subdirectory of segment files per client.
	Directory string `mapstructure:"directory"`
	// CreateDirectory creates Directory when it does not exist.
	CreateDirectory bool `mapstructure:"create_directory"`
	// FSync flushes every write to the disk before it returns. Without it a
	// write survives the process (SIGKILL, a crash), not the machine, the
	// same as file_storage's default.
	FSync bool `mapstructure:"fsync"`
	// SegmentSize is the size, in bytes, past which a new segment file is
	// started; used-up segments are deleted whole.
	SegmentSize int64 `mapstructure:"segment_size"`
	// CacheSize bounds, in bytes per client, the values kept in memory
	// after they are written, until they are read back once.
	CacheSize int64 `mapstructure:"cache_size"`
	// ImportFileStorage takes over the data of a file_storage extension
	// that used the same Directory: a client with no log yet imports the
	// file_storage database of the same component and signal, then renames
	// that file to NAME.imported.
	ImportFileStorage bool `mapstructure:"import_file_storage"`
}

// Defaults.
const (
	DefaultSegmentSize = 8 << 20
	DefaultCacheSize   = 32 << 20
	minSegmentSize     = 64 << 10
)

// Validate checks the configuration; errors name the field.
func (c *Config) Validate() error {
	var errs []error
	if c.Directory == "" {
		errs = append(errs, errors.New("directory: must be set"))
	}
	if c.SegmentSize < minSegmentSize {
		errs = append(errs, fmt.Errorf("segment_size: %d is below %d bytes", c.SegmentSize, minSegmentSize))
	}
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("cache_size: %d is negative", c.CacheSize))
	}
	return errors.Join(errs...)
}
