package ipvs

import (
	"context"
	"log/slog"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/execscript"
)

// execScript starts a quorum_up/quorum_down command the way lvsd runs every
// configured script (internal/execscript: no shell, its user, its own
// process group) and does not wait for it: a goroutine reaps it and logs a
// failure. As keepalived's notify scripts, it is not time-bounded.
func execScript(log *slog.Logger, g *conf.Global, s *conf.Script) {
	if s == nil || len(s.Args) == 0 {
		return
	}
	cmd, err := execscript.Resolve(s, g)
	if err != nil {
		log.Warn("ipvs: script not run", "script", s.Args[0], "pos", s.Pos.String(), "err", err)
		return
	}
	p, err := cmd.Start()
	if err != nil {
		log.Warn("ipvs: script failed to start", "script", s.Args[0], "pos", s.Pos.String(), "err", err)
		return
	}
	go func() {
		if res := p.Wait(context.Background(), 0); !res.OK() {
			log.Info("ipvs: script failed", "script", s.Args[0], "pos", s.Pos.String(), "result", res.String())
		}
	}()
}
