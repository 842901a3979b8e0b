// Package metrics exports the engine's statistics as Prometheus metrics,
// the same way in both worlds, and samples a simulation's metrics in
// virtual time.
//
// What it owns:
//
//   - The metric names, help and labels (node.go, sim.go). Every name starts
//     with swarm_, carries its unit in base units (_seconds, _bytes) and ends
//     in _total when it is a counter; TestLint holds them to what
//     `promtool check metrics` checks. Every engine metric has a node label.
//   - Collectors that read plain Stats structs at collect time: the engine
//     keeps counters in its components and never imports Prometheus
//     (engine/arch_test.go forbids it). NewNodeCollector exports one node,
//     NewNodesCollector a set of nodes that may change between collects, and
//     NewSimCollector a simulation's own counters (events, virtual and wall
//     time, network, disks, container runtimes).
//   - Source, the one way a collector reaches a node: a function returning a
//     Snapshot, called at every collect, so nothing holds an engine component
//     across a restart. In the simulator FromNode is called directly (one
//     goroutine runs every node); in real mode OnLoop posts FromNode to the
//     node's loop and waits for the answer, because the node's state belongs
//     to the goroutine draining that loop.
//   - Sampler and Recording: samples over time, queried as series (Series,
//     Match, Sum) and written as OpenMetrics text with timestamps
//     (WriteOpenMetrics), which ReadOpenMetrics reads back and checks
//     strictly. NewSampler gathers any registry; NewCollectorSampler reads
//     this package's collectors directly, through the same code as their
//     Collect but without building Prometheus metrics, which a simulation of
//     thousands of nodes sampled every virtual second cannot afford.
//
// Timestamps: a Recording counts time from a start instant. A simulation
// uses sim.Epoch (2026-01-01T00:00:00Z), so a timestamp in the file is
// sim.Epoch plus the virtual time of the sample, in seconds since the Unix
// epoch as OpenMetrics wants, with millisecond resolution: subtract
// 1767225600 for seconds since the run's start. The same instant is what
// the simulated nodes' clocks read (without skew).
//
// Real mode wiring (swarmd):
//
//	reg := prometheus.NewRegistry()
//	src := metrics.OnLoop(loop, func() metrics.Snapshot { return metrics.FromNode(engineNode) }, 2*time.Second)
//	reg.MustRegister(metrics.NewNodeCollector(string(nodeID), src))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
//
// If the engine node is replaced (a restart inside the process), the
// function passed to OnLoop should return the current one.
//
// What it must never do: hold an engine component between collects, write
// to the engine, or be imported by engine/. It does not import the
// simulator either (SimStats are plain values), so swarmd does not link
// sim/.
package metrics
