package metrics

import (
	"strings"
	"testing"
)

func TestSimCollectorExportsStats(t *testing.T) {
	got := flatten(gather(t, NewSimCollector(fullSimStats)))
	expectValues(t, got, map[string]float64{
		`swarm_sim_events_total{}`:                                    1234,
		`swarm_sim_pending_events{}`:                                  56,
		`swarm_sim_virtual_seconds{}`:                                 90,
		`swarm_sim_wall_seconds{}`:                                    3,
		`swarm_sim_virtual_wall_ratio{}`:                              30,
		`swarm_sim_network_messages_sent_total{}`:                     100,
		`swarm_sim_network_messages_delivered_total{}`:                90,
		`swarm_sim_network_messages_dropped_total{}`:                  12,
		`swarm_sim_network_messages_duplicated_total{}`:               2,
		`swarm_sim_disk_syncs_total{node="m1"}`:                       40,
		`swarm_sim_running_containers{node="w1"}`:                     1,
		`swarm_sim_container_events_total{event="started",node="m1"}`: 3,
		`swarm_sim_container_events_total{event="exited",node="m1"}`:  1,
	})
	if _, ok := got[`swarm_sim_container_events_total{event="lost",node="w1"}`]; ok {
		t.Error("an event that never happened has a series")
	}
}

// TestSimCollectorWithoutWall: the wall-clock metrics, the only ones that
// differ between two runs of one seed, are left out when the wall time is
// not given.
func TestSimCollectorWithoutWall(t *testing.T) {
	got := flatten(gather(t, NewSimCollector(func() SimStats {
		s := fullSimStats()
		s.Wall = 0
		return s
	})))
	for k := range got {
		if strings.Contains(k, "wall") {
			t.Errorf("%s exported without a wall time", k)
		}
	}
}
