package workflows

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
)

// EmbeddedRedis starts a Redis-compatible server inside the process, for the embedded
// default: no Redis to install. Its data lives in memory only, which is enough because the
// database is the source of truth: after a restart the relay hands every unfinished outbox
// row over again.
//
// miniredis only moves its key expiries when told to, and Asynq relies on expiring keys
// (server heartbeats, task leases); a ticker tells it how much time has passed.
func EmbeddedRedis(ctx context.Context) (asynq.RedisConnOpt, func(), error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, nil, fmt.Errorf("embedded redis: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		const step = time.Second
		t := time.NewTicker(step)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.FastForward(step)
			}
		}
	}()
	stop := func() {
		cancel()
		m.Close()
	}
	return asynq.RedisClientOpt{Addr: m.Addr()}, stop, nil
}
