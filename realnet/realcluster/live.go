package realcluster

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/moby/moby/client"
)

// live is what this process has created and not removed yet, for
// CloseAll: a program interrupted mid-run still cleans up.
var live struct {
	mu       sync.Mutex
	clusters map[*Cluster]bool
	images   map[string]*client.Client // image runs
}

func trackCluster(c *Cluster, on bool) {
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.clusters == nil {
		live.clusters = map[*Cluster]bool{}
	}
	if on {
		live.clusters[c] = true
	} else {
		delete(live.clusters, c)
	}
}

func trackImages(run string, cli *client.Client, on bool) {
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.images == nil {
		live.images = map[string]*client.Client{}
	}
	if on {
		live.images[run] = cli
	} else {
		delete(live.images, run)
	}
}

// CloseAll removes every cluster and image set this process created and
// has not removed yet. A command calls it when it is interrupted.
func CloseAll(ctx context.Context) error {
	live.mu.Lock()
	clusters := slices.Collect(maps.Keys(live.clusters))
	images := maps.Clone(live.images)
	live.mu.Unlock()
	var errs []error
	for _, c := range clusters {
		errs = append(errs, c.Close(ctx))
	}
	for _, run := range slices.Sorted(maps.Keys(images)) {
		errs = append(errs, RemoveImages(ctx, images[run], run))
	}
	return errors.Join(errs...)
}
