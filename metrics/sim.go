package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SimStats are a simulation's own counters at one moment. They are plain
// values so that this package needs no import of the simulator: swarmd
// links metrics/ without linking sim/.
type SimStats struct {
	Events        uint64        // kernel events processed since the start
	PendingEvents int           // events scheduled and not yet run
	Virtual       time.Duration // virtual time since the run's start
	// Wall is the wall-clock time since the run's start; 0 leaves out the
	// wall metrics (they are the only ones that differ between two runs of
	// one seed).
	Wall     time.Duration
	Network  NetworkStats
	Machines []MachineStats
}

// NetworkStats are the simulated network's message counters.
type NetworkStats struct {
	Sent, Delivered, Dropped, Duplicated uint64
}

// MachineStats are one simulated machine's disk and container runtime
// counters, which outlive the engine's restarts.
type MachineStats struct {
	Node              string
	DiskSyncs         uint64
	RunningContainers int
	Containers        ContainerStats
}

// ContainerStats count what a simulated container runtime did (the fields
// of sim.ExecutorStats).
type ContainerStats struct {
	Prepared, PrepareFailed, Started, StartFailed uint64
	Exited, Stopped, Killed, Unhealthy, Removed   uint64
	Lost                                          uint64
}

// NewSimCollector exports a simulation's own counters, read from stats at
// every collect.
func NewSimCollector(stats func() SimStats) Collector {
	return simCollector{stats}
}

type simCollector struct{ stats func() SimStats }

var simFamilies []*family

func defSim(name, help string, k kind, labels ...string) *family {
	f := newFamily(name, help, k, labels...)
	simFamilies = append(simFamilies, f)
	return f
}

var (
	simEvents = defSim("swarm_sim_events_total",
		"Events the simulation kernel processed (every timer, message delivery, disk sync, container event and step, the metric sampler's own included).", kindCounter)
	simPending = defSim("swarm_sim_pending_events",
		"Events scheduled on the kernel and not yet run.", kindGauge)
	simVirtual = defSim("swarm_sim_virtual_seconds",
		"Virtual time since the run's start.", kindGauge)
	simWall = defSim("swarm_sim_wall_seconds",
		"Wall-clock time since the run's start.", kindGauge)
	simRatio = defSim("swarm_sim_virtual_wall_ratio",
		"Virtual time over wall-clock time since the run's start: how many times faster than real time the simulation runs.", kindGauge)
	simNetSent = defSim("swarm_sim_network_messages_sent_total",
		"Messages nodes handed to the simulated network.", kindCounter)
	simNetDelivered = defSim("swarm_sim_network_messages_delivered_total",
		"Messages the simulated network delivered to a machine that was up (duplicates included).", kindCounter)
	simNetDropped = defSim("swarm_sim_network_messages_dropped_total",
		"Messages the simulated network lost (random loss, partitions, unknown destinations); those addressed to a machine that is down when they arrive are neither delivered nor counted here.", kindCounter)
	simNetDuplicated = defSim("swarm_sim_network_messages_duplicated_total",
		"Messages the simulated network delivered twice.", kindCounter)
	simDiskSyncs = defSim("swarm_sim_disk_syncs_total",
		"Syncs a machine's simulated disk completed.", kindCounter, NodeLabel)
	simRunning = defSim("swarm_sim_running_containers",
		"Containers running on a machine's simulated runtime.", kindGauge, NodeLabel)
	simContainerEvents = defSim("swarm_sim_container_events_total",
		"What a machine's simulated container runtime did, by event; an event that never happened on a machine has no series.", kindCounter, NodeLabel, "event")
)

func (simCollector) Describe(ch chan<- *prometheus.Desc) { describe(ch, simFamilies) }

func (c simCollector) Collect(ch chan<- prometheus.Metric) { c.collectTo(promEmitter{ch}) }

func (c simCollector) collectTo(e emitter) {
	s := c.stats()
	e.value(simEvents, float64(s.Events), "", "")
	e.value(simPending, float64(s.PendingEvents), "", "")
	e.value(simVirtual, s.Virtual.Seconds(), "", "")
	if s.Wall > 0 {
		e.value(simWall, s.Wall.Seconds(), "", "")
		e.value(simRatio, s.Virtual.Seconds()/s.Wall.Seconds(), "", "")
	}
	e.value(simNetSent, float64(s.Network.Sent), "", "")
	e.value(simNetDelivered, float64(s.Network.Delivered), "", "")
	e.value(simNetDropped, float64(s.Network.Dropped), "", "")
	e.value(simNetDuplicated, float64(s.Network.Duplicated), "", "")
	for i := range s.Machines {
		m := &s.Machines[i]
		e.value(simDiskSyncs, float64(m.DiskSyncs), m.Node, "")
		e.value(simRunning, float64(m.RunningContainers), m.Node, "")
		// Most events never happen on most machines: leaving their zeros
		// out saves a third of a large cluster's series.
		c := &m.Containers
		for _, ev := range [...]struct {
			name string
			n    uint64
		}{
			{"prepared", c.Prepared}, {"prepare_failed", c.PrepareFailed},
			{"started", c.Started}, {"start_failed", c.StartFailed},
			{"exited", c.Exited}, {"stopped", c.Stopped}, {"killed", c.Killed},
			{"unhealthy", c.Unhealthy}, {"removed", c.Removed}, {"lost", c.Lost},
		} {
			if ev.n > 0 {
				e.value(simContainerEvents, float64(ev.n), m.Node, ev.name)
			}
		}
	}
}
