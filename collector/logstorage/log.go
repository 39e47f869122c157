package logstorage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

// A log is one client's key/value store: an append-only sequence of
// segment files (NNNNNNNN.seg) in its own directory, and an index in
// memory of where each live key's value is.
//
// Each Batch with a Set or Delete is one record, written with one write:
//
//	uint32 LE  payload length
//	uint32 LE  CRC-32C of the payload
//	payload    ops: byte op (1 set, 2 delete), uvarint key length, key,
//	           and for a set: uvarint value length, value
//
// A record whose length or checksum does not hold (a write torn by a
// crash) ends its segment's replay, and the segment is cut there; the
// records before it stand, so a batch is applied whole or not at all.
//
// Segments are deleted oldest first once none of their values is live:
// a newer segment may hold the tombstone of an older one's value, so a
// segment goes only when every older one is gone. When the active segment
// fills up, a new one starts, and the oldest segments whose live values
// fill less than a quarter of a segment have those values copied forward,
// so one long-lived key cannot keep the whole history on disk.
type log struct {
	dir    string
	opts   logOptions
	logger *zap.Logger

	mu     sync.Mutex
	segs   []*segment // oldest first; the last is the one written to
	index  map[string]*entry
	cached int64 // bytes of values held in memory
	closed bool
	broken error // set when the log cannot be written safely any more
	unlock func() error
}

type logOptions struct {
	segmentSize int64
	cacheSize   int64
	fsync       bool
}

type segment struct {
	num  uint64
	f    *os.File
	size int64
	live int // live values in this segment
	// liveBytes is the size of those values.
	liveBytes int64
}

// entry is where a live value is. value holds it while it is cached: a
// value just written is usually read once soon after (the sending queue
// reads back what it wrote), so it is kept until then, within cacheSize.
type entry struct {
	seg   *segment
	off   int64
	n     int
	value []byte
}

const (
	opSet    = 1
	opDelete = 2

	recordHeader = 8
	// maxRecord bounds what replay believes of a length field.
	maxRecord = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var errClosed = errors.New("log storage: client is closed")

func segName(num uint64) string { return fmt.Sprintf("%08d.seg", num) }

// openLog opens (or creates) the log in dir and replays it.
func openLog(dir string, opts logOptions, logger *zap.Logger) (*log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l, nums, err := loadLog(dir, opts, logger)
	if err != nil {
		return nil, err
	}
	next := uint64(1)
	if len(nums) > 0 {
		next = nums[len(nums)-1] + 1
	}
	if err := l.startSegment(next); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.dropDead()
	return l, nil
}

// loadLog locks the log in dir and replays its segments, without starting
// one to write to; it returns the segment numbers found, oldest first.
func loadLog(dir string, opts logOptions, logger *zap.Logger) (*log, []uint64, error) {
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	l := &log{dir: dir, opts: opts, logger: logger, index: map[string]*entry{}, unlock: unlock}
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		l.closeFiles()
		return nil, nil, err
	}
	var nums []uint64
	for _, n := range names {
		num, perr := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), ".seg"), 10, 64)
		if perr != nil {
			err = fmt.Errorf("log storage: %s: not a segment name", n)
			break
		}
		nums = append(nums, num)
	}
	if err != nil {
		l.closeFiles()
		return nil, nil, err
	}
	slices.Sort(nums)
	for _, num := range nums {
		if err := l.replay(num); err != nil {
			l.closeFiles()
			return nil, nil, err
		}
	}
	return l, nums, nil
}

// peekLog calls fn with every live value of the log in dir, in key order,
// and closes the log again: nothing is written (beyond cutting a torn tail,
// as opening it would). A directory that does not exist holds nothing.
func peekLog(dir string, logger *zap.Logger, fn func(key string, value []byte) error) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	l, _, err := loadLog(dir, logOptions{}, logger)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(l.index))
	for k := range l.index {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := l.get(k)
		if err == nil {
			err = fn(k, v)
		}
		if err != nil {
			return errors.Join(err, l.closeFiles())
		}
	}
	return l.closeFiles()
}

// replay reads one segment into the index.
func (l *log) replay(num uint64) error {
	path := filepath.Join(l.dir, segName(num))
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("log storage: read %s: %w", path, err)
	}
	s := &segment{num: num, f: f}
	l.segs = append(l.segs, s)
	off := 0
	for off < len(data) {
		payload, ok := readRecord(data[off:])
		if !ok {
			l.logger.Warn("log storage: cutting a segment at a torn or corrupt record (a crash while writing)",
				zap.String("segment", path), zap.Int("offset", off), zap.Int("bytes_dropped", len(data)-off))
			if err := f.Truncate(int64(off)); err != nil {
				return fmt.Errorf("log storage: cut %s: %w", path, err)
			}
			break
		}
		base := int64(off + recordHeader)
		err := forOps(payload, func(op byte, key string, voff, vlen int) {
			switch op {
			case opSet:
				l.put(key, &entry{seg: s, off: base + int64(voff), n: vlen})
			case opDelete:
				l.remove(key)
			}
		})
		if err != nil { // checksummed, so written that way: a bug, not a crash
			return fmt.Errorf("log storage: %s at %d: %w", path, off, err)
		}
		off += recordHeader + len(payload)
	}
	s.size = int64(off)
	return nil
}

// readRecord returns the payload of the record at the start of b, or false
// when it is incomplete or fails its checksum.
func readRecord(b []byte) ([]byte, bool) {
	if len(b) < recordHeader {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxRecord || int(n) > len(b)-recordHeader {
		return nil, false
	}
	payload := b[recordHeader : recordHeader+int(n)]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, false
	}
	return payload, true
}

// forOps calls fn for each op of a payload, with the value's offset and
// length within the payload.
func forOps(p []byte, fn func(op byte, key string, voff, vlen int)) error {
	for i := 0; i < len(p); {
		op := p[i]
		i++
		kl, n := binary.Uvarint(p[i:])
		if n <= 0 || kl > uint64(len(p)-i-n) {
			return errors.New("bad key length")
		}
		i += n
		key := string(p[i : i+int(kl)])
		i += int(kl)
		switch op {
		case opSet:
			vl, n := binary.Uvarint(p[i:])
			if n <= 0 || vl > uint64(len(p)-i-n) {
				return errors.New("bad value length")
			}
			i += n
			fn(op, key, i, int(vl))
			i += int(vl)
		case opDelete:
			fn(op, key, 0, 0)
		default:
			return fmt.Errorf("unknown op %d", op)
		}
	}
	return nil
}

func (l *log) startSegment(num uint64) error {
	path := filepath.Join(l.dir, segName(num))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("log storage: %w", err)
	}
	if l.opts.fsync {
		if err := syncDir(l.dir); err != nil {
			f.Close()
			return err
		}
	}
	l.segs = append(l.segs, &segment{num: num, f: f})
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (l *log) active() *segment { return l.segs[len(l.segs)-1] }

// put makes e the key's value, replacing any older one.
func (l *log) put(key string, e *entry) {
	l.remove(key)
	l.index[key] = e
	e.seg.live++
	e.seg.liveBytes += int64(e.n)
}

func (l *log) remove(key string) {
	old, ok := l.index[key]
	if !ok {
		return
	}
	delete(l.index, key)
	old.seg.live--
	old.seg.liveBytes -= int64(old.n)
	l.uncache(old)
}

func (l *log) uncache(e *entry) {
	if e.value != nil {
		l.cached -= int64(len(e.value))
		e.value = nil
	}
}

// get returns a key's value, nil when it has none. A cached value is
// handed over (and forgotten): the caller may keep it.
func (l *log) get(key string) ([]byte, error) {
	e, ok := l.index[key]
	if !ok {
		return nil, nil
	}
	if v := e.value; v != nil {
		l.uncache(e)
		return v, nil
	}
	v := make([]byte, e.n)
	if _, err := e.seg.f.ReadAt(v, e.off); err != nil {
		return nil, fmt.Errorf("log storage: read %q: %w", key, err)
	}
	return v, nil
}

// pending is what the ops before a Get in the same batch did to a key.
type pending struct {
	value   []byte
	deleted bool
}

// batch runs ops in order: Gets see the Sets and Deletes before them.
func (l *log) batch(ops []*storage.Operation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.broken != nil {
		return l.broken
	}
	if err := l.apply(ops, true); err != nil {
		return err
	}
	if l.active().size >= l.opts.segmentSize {
		return l.rotate()
	}
	return nil
}

// apply is batch under the lock, without rotation; cache says whether the
// values written may be kept in memory.
func (l *log) apply(ops []*storage.Operation, cache bool) error {
	size := 0
	writes := 0
	for _, op := range ops {
		if op == nil {
			continue
		}
		switch op.Type {
		case storage.Set:
			size += 1 + 2*binary.MaxVarintLen64 + len(op.Key) + len(op.Value)
			writes++
		case storage.Delete:
			size += 1 + binary.MaxVarintLen64 + len(op.Key)
			writes++
		}
	}
	if writes == 0 {
		for _, op := range ops {
			if op != nil && op.Type == storage.Get {
				v, err := l.get(op.Key)
				if err != nil {
					return err
				}
				op.Value = v
			}
		}
		return nil
	}
	// The record is built in a buffer of its own: the cached values are
	// slices of it.
	rec := make([]byte, recordHeader, recordHeader+size)
	var local map[string]pending // this batch's effects, for its Gets
	type set struct {
		key      string
		off, len int
	}
	var sets []set
	var deletes []string
	for _, op := range ops {
		if op == nil {
			continue
		}
		switch op.Type {
		case storage.Get:
			if p, ok := local[op.Key]; ok {
				if p.deleted {
					op.Value = nil
				} else {
					op.Value = slices.Clone(p.value)
				}
				continue
			}
			v, err := l.get(op.Key)
			if err != nil {
				return err
			}
			op.Value = v
		case storage.Set:
			rec = append(rec, opSet)
			rec = binary.AppendUvarint(rec, uint64(len(op.Key)))
			rec = append(rec, op.Key...)
			rec = binary.AppendUvarint(rec, uint64(len(op.Value)))
			sets = append(sets, set{op.Key, len(rec), len(op.Value)})
			rec = append(rec, op.Value...)
			if local == nil {
				local = map[string]pending{}
			}
			local[op.Key] = pending{value: op.Value}
		case storage.Delete:
			rec = append(rec, opDelete)
			rec = binary.AppendUvarint(rec, uint64(len(op.Key)))
			rec = append(rec, op.Key...)
			deletes = append(deletes, op.Key)
			if local == nil {
				local = map[string]pending{}
			}
			local[op.Key] = pending{deleted: true}
		default:
			return fmt.Errorf("log storage: unknown operation type %d", op.Type)
		}
	}
	payload := rec[recordHeader:]
	binary.LittleEndian.PutUint32(rec, uint32(len(payload)))
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(payload, crcTable))
	s := l.active()
	base := s.size
	if err := l.write(s, rec); err != nil {
		return err
	}
	// The index follows the record's order: a key set then deleted in one
	// batch ends deleted, and the other way round.
	si, di := 0, 0
	for _, op := range ops {
		if op == nil {
			continue
		}
		switch op.Type {
		case storage.Set:
			w := sets[si]
			si++
			e := &entry{seg: s, off: base + int64(w.off), n: w.len}
			l.put(w.key, e)
			if cache && l.cached+int64(w.len) <= l.opts.cacheSize {
				e.value = rec[w.off : w.off+w.len : w.off+w.len]
				l.cached += int64(w.len)
			}
		case storage.Delete:
			l.remove(deletes[di])
			di++
		}
	}
	l.dropDead()
	return nil
}

// write appends rec to s. A failed write is cut off again, so that the
// segment never holds a torn record in its middle; if even that fails, the
// segment is closed to writing and a new one started.
func (l *log) write(s *segment, rec []byte) error {
	n, err := s.f.WriteAt(rec, s.size)
	if err == nil && l.opts.fsync {
		err = s.f.Sync()
	}
	if err != nil {
		if n > 0 {
			if terr := s.f.Truncate(s.size); terr != nil {
				s.size += int64(n)
				if rerr := l.startSegment(s.num + 1); rerr != nil {
					// Records after the torn one would be lost at
					// replay: write nothing more.
					l.broken = fmt.Errorf("log storage: %s cannot be written after a failed write: %w", l.dir, errors.Join(err, terr, rerr))
					return l.broken
				}
			}
		}
		return fmt.Errorf("log storage: write: %w", err)
	}
	s.size += int64(n)
	return nil
}

// dropDead deletes the oldest segments while they hold nothing live.
func (l *log) dropDead() {
	for len(l.segs) > 1 && l.segs[0].live == 0 {
		l.deleteSegment(l.segs[0])
		l.segs = l.segs[1:]
	}
}

func (l *log) deleteSegment(s *segment) {
	path := filepath.Join(l.dir, segName(s.num))
	s.f.Close()
	if err := os.Remove(path); err != nil {
		l.logger.Warn("log storage: remove a used-up segment", zap.String("segment", path), zap.Error(err))
	}
}

// rotate starts a new segment, then copies forward the live values of the
// oldest segments that hold little, and deletes them.
func (l *log) rotate() error {
	if err := l.startSegment(l.active().num + 1); err != nil {
		return err
	}
	for len(l.segs) > 2 && l.segs[0].liveBytes < l.opts.segmentSize/4 {
		old := l.segs[0]
		if err := l.copyForward(old); err != nil {
			return err
		}
		l.dropDead()
		if l.segs[0] == old { // still live: cannot happen, but never loop
			break
		}
	}
	return nil
}

// copyForward rewrites the live values of old into the active segment, as
// one record.
func (l *log) copyForward(old *segment) error {
	var keys []string
	for k, e := range l.index {
		if e.seg == old {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	ops := make([]*storage.Operation, 0, len(keys))
	for _, k := range keys {
		e := l.index[k]
		v := e.value
		if v == nil {
			v = make([]byte, e.n)
			if _, err := old.f.ReadAt(v, e.off); err != nil {
				return fmt.Errorf("log storage: copy %q forward: %w", k, err)
			}
		}
		ops = append(ops, storage.SetOperation(k, v))
	}
	if len(ops) == 0 {
		return nil
	}
	return l.apply(ops, false)
}

func (l *log) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.closeFiles()
}

func (l *log) closeFiles() error {
	var errs []error
	for _, s := range l.segs {
		if err := s.f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	l.index, l.cached = nil, 0
	if l.unlock != nil {
		errs = append(errs, l.unlock())
	}
	return errors.Join(errs...)
}
