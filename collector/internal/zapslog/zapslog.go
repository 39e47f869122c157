// Package zapslog lets code that takes a *slog.Logger (the store drivers, the
// query API) log through the collector's zap logger, so one process writes
// one log stream.
package zapslog

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a *slog.Logger writing to l.
func New(l *zap.Logger) *slog.Logger {
	return slog.New(&handler{l: l.WithOptions(zap.AddCallerSkip(3))})
}

type handler struct {
	l      *zap.Logger
	prefix string // group prefix, "a.b."
}

var _ slog.Handler = (*handler)(nil)

func level(l slog.Level) zapcore.Level {
	switch {
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	case l >= slog.LevelInfo:
		return zapcore.InfoLevel
	default:
		return zapcore.DebugLevel
	}
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return h.l.Core().Enabled(level(l))
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	ce := h.l.Check(level(r.Level), r.Message)
	if ce == nil {
		return nil
	}
	fields := make([]zap.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, h.field(a))
		return true
	})
	ce.Write(fields...)
	return nil
}

func (h *handler) field(a slog.Attr) zap.Field {
	v := a.Value.Resolve()
	key := h.prefix + a.Key
	switch v.Kind() {
	case slog.KindString:
		return zap.String(key, v.String())
	case slog.KindInt64:
		return zap.Int64(key, v.Int64())
	case slog.KindUint64:
		return zap.Uint64(key, v.Uint64())
	case slog.KindFloat64:
		return zap.Float64(key, v.Float64())
	case slog.KindBool:
		return zap.Bool(key, v.Bool())
	case slog.KindDuration:
		return zap.Duration(key, v.Duration())
	case slog.KindTime:
		return zap.Time(key, v.Time())
	default:
		if err, ok := v.Any().(error); ok {
			return zap.NamedError(key, err)
		}
		return zap.Any(key, v.Any())
	}
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	fields := make([]zap.Field, 0, len(attrs))
	for _, a := range attrs {
		fields = append(fields, h.field(a))
	}
	return &handler{l: h.l.With(fields...), prefix: h.prefix}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{l: h.l, prefix: h.prefix + name + "."}
}
