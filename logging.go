package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"strconv"
	"strings"
	"sync"
)

// parseFacility accepts keepalived's -S values: 0-7 (LOG_LOCAL0-7), local0-7, user, daemon.
func parseFacility(v string) (syslog.Priority, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 || n > 7 {
			return 0, fmt.Errorf("facility %d outside 0-7", n)
		}
		return syslog.LOG_LOCAL0 + syslog.Priority(n)<<3, nil
	}
	switch s := strings.ToLower(v); {
	case s == "daemon":
		return syslog.LOG_DAEMON, nil
	case s == "user":
		return syslog.LOG_USER, nil
	case len(s) == 6 && strings.HasPrefix(s, "local") && s[5] >= '0' && s[5] <= '7':
		return syslog.LOG_LOCAL0 + syslog.Priority(s[5]-'0')<<3, nil
	}
	return 0, fmt.Errorf("unknown facility '%s' (want 0-7, local0-7, user or daemon)", v)
}

// newLogger logs to the console with -l, to syslog otherwise; -D adds debug detail.
func newLogger(o *options, stderr io.Writer) (*slog.Logger, error) {
	level := slog.LevelInfo
	if o.logDetail {
		level = slog.LevelDebug
	}
	if o.logConsole {
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), nil
	}
	fac := syslog.LOG_DAEMON
	if o.logFacility != "" {
		f, err := parseFacility(o.logFacility)
		if err != nil {
			return nil, err
		}
		fac = f
	}
	w, err := syslog.New(fac|syslog.LOG_INFO, "lvsd")
	if err != nil {
		// No syslog daemon (a container, a test): fall back to the console.
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), nil
	}
	return slog.New(newSyslogHandler(w, level)), nil
}

// syslogHandler formats records as text (without time: syslog stamps them) and
// sends each at the syslog severity matching its level.
type syslogHandler struct {
	w     *syslog.Writer
	level slog.Level
	mu    *sync.Mutex
	buf   *bytes.Buffer
	text  slog.Handler
}

func newSyslogHandler(w *syslog.Writer, level slog.Level) *syslogHandler {
	buf := &bytes.Buffer{}
	return &syslogHandler{w: w, level: level, mu: &sync.Mutex{}, buf: buf, text: slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})}
}

func (h *syslogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	msg := strings.TrimSuffix(h.buf.String(), "\n")
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Err(msg)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(msg)
	case r.Level >= slog.LevelInfo:
		return h.w.Info(msg)
	}
	return h.w.Debug(msg)
}

func (h *syslogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(attrs)
	return &c
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.text = h.text.WithGroup(name)
	return &c
}
