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

// events lists the container events in a fixed order with their label.
func (c *ContainerStats) events() [10]struct {
	name string
	n    uint64
} {
	return [...]struct {
		name string
		n    uint64
	}{
		{"prepared", c.Prepared}, {"prepare_failed", c.PrepareFailed},
		{"started", c.Started}, {"start_failed", c.StartFailed},
		{"exited", c.Exited}, {"stopped", c.Stopped}, {"killed", c.Killed},
		{"unhealthy", c.Unhealthy}, {"removed", c.Removed}, {"lost", c.Lost},
	}
}

// NewSimCollector exports a simulation's own counters, read from stats at
// every collect.
func NewSimCollector(stats func() SimStats) prometheus.Collector {
	return simCollector{stats}
}

type simCollector struct{ stats func() SimStats }

var (
	simEvents = prometheus.NewDesc("swarm_sim_events_total",
		"Events the simulation kernel processed (every timer, message delivery, disk sync, container event and step, the metric sampler's own included).", nil, nil)
	simPending = prometheus.NewDesc("swarm_sim_pending_events",
		"Events scheduled on the kernel and not yet run.", nil, nil)
	simVirtual = prometheus.NewDesc("swarm_sim_virtual_seconds",
		"Virtual time since the run's start.", nil, nil)
	simWall = prometheus.NewDesc("swarm_sim_wall_seconds",
		"Wall-clock time since the run's start.", nil, nil)
	simRatio = prometheus.NewDesc("swarm_sim_virtual_wall_ratio",
		"Virtual time over wall-clock time since the run's start: how many times faster than real time the simulation runs.", nil, nil)
	simNetSent = prometheus.NewDesc("swarm_sim_network_messages_sent_total",
		"Messages nodes handed to the simulated network.", nil, nil)
	simNetDelivered = prometheus.NewDesc("swarm_sim_network_messages_delivered_total",
		"Messages the simulated network delivered to a machine that was up (duplicates included).", nil, nil)
	simNetDropped = prometheus.NewDesc("swarm_sim_network_messages_dropped_total",
		"Messages the simulated network lost (random loss, partitions, unknown destinations); those addressed to a machine that is down when they arrive are neither delivered nor counted here.", nil, nil)
	simNetDuplicated = prometheus.NewDesc("swarm_sim_network_messages_duplicated_total",
		"Messages the simulated network delivered twice.", nil, nil)
	simDiskSyncs = prometheus.NewDesc("swarm_sim_disk_syncs_total",
		"Syncs a machine's simulated disk completed.", []string{NodeLabel}, nil)
	simRunning = prometheus.NewDesc("swarm_sim_running_containers",
		"Containers running on a machine's simulated runtime.", []string{NodeLabel}, nil)
	simContainerEvents = prometheus.NewDesc("swarm_sim_container_events_total",
		"What a machine's simulated container runtime did, by event.", []string{NodeLabel, "event"}, nil)
)

func (simCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{simEvents, simPending, simVirtual, simWall, simRatio,
		simNetSent, simNetDelivered, simNetDropped, simNetDuplicated, simDiskSyncs, simRunning, simContainerEvents} {
		ch <- d
	}
}

func (c simCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	constant := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	constant(simEvents, prometheus.CounterValue, float64(s.Events))
	constant(simPending, prometheus.GaugeValue, float64(s.PendingEvents))
	constant(simVirtual, prometheus.GaugeValue, s.Virtual.Seconds())
	if s.Wall > 0 {
		constant(simWall, prometheus.GaugeValue, s.Wall.Seconds())
		constant(simRatio, prometheus.GaugeValue, s.Virtual.Seconds()/s.Wall.Seconds())
	}
	constant(simNetSent, prometheus.CounterValue, float64(s.Network.Sent))
	constant(simNetDelivered, prometheus.CounterValue, float64(s.Network.Delivered))
	constant(simNetDropped, prometheus.CounterValue, float64(s.Network.Dropped))
	constant(simNetDuplicated, prometheus.CounterValue, float64(s.Network.Duplicated))
	for i := range s.Machines {
		m := &s.Machines[i]
		constant(simDiskSyncs, prometheus.CounterValue, float64(m.DiskSyncs), m.Node)
		constant(simRunning, prometheus.GaugeValue, float64(m.RunningContainers), m.Node)
		for _, e := range m.Containers.events() {
			constant(simContainerEvents, prometheus.CounterValue, float64(e.n), m.Node, e.name)
		}
	}
}
