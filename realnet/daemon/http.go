package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmsim/swarmsim/metrics"
)

// healthTimeout is how long /healthz waits for the loop to answer.
const healthTimeout = 2 * time.Second

// Health is what /healthz answers, as JSON.
type Health struct {
	Status   string `json:"status"` // "ok", or "stuck" when the loop did not answer
	NodeID   string `json:"node_id"`
	Role     string `json:"role"`
	Leader   string `json:"leader,omitempty"`
	IsLeader bool   `json:"is_leader"`
	Backlog  int64  `json:"loop_backlog"`
}

func (d *Daemon) serveHTTP() error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	src := metrics.OnLoop(d.loop, func() metrics.Snapshot { return metrics.FromNode(d.node) }, healthTimeout)
	reg.MustRegister(metrics.NewNodeCollector(string(d.id), src))
	reg.MustRegister(newTransportCollector(d))

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.HandleFunc("/healthz", d.healthz)
	lis, err := net.Listen("tcp", d.opts.HTTPAddr)
	if err != nil {
		return err
	}
	d.httpLis = lis
	d.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := d.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// healthz answers 200 with the node's role and leader when its loop runs,
// 503 when the loop does not answer in time.
func (d *Daemon) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	h := Health{Status: "ok", NodeID: string(d.id), Role: "worker"}
	err := d.loop.Do(ctx, func() {
		st := d.status(false)
		h.Role, h.Leader, h.IsLeader = st.Role, st.Leader, st.IsLeader
	})
	h.Backlog = d.loop.Backlog()
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		h.Status = "stuck"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(h)
}

// transportCollector exports the transport's counters.
type transportCollector struct {
	d                                  *Daemon
	sent, dropped, lost, recv, denied  *prometheus.Desc
	decodeErr, refused, inbound, peers *prometheus.Desc
	backlog                            *prometheus.Desc
}

func newTransportCollector(d *Daemon) *transportCollector {
	l := prometheus.Labels{"node": string(d.id)}
	desc := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, l) }
	return &transportCollector{
		d:         d,
		sent:      desc("swarm_transport_messages_sent_total", "Messages handed to a peer's stream."),
		dropped:   desc("swarm_transport_messages_dropped_total", "Messages dropped from a full peer queue (the oldest go)."),
		lost:      desc("swarm_transport_messages_lost_total", "Messages lost with an unreachable peer or a broken stream."),
		recv:      desc("swarm_transport_messages_received_total", "Messages received, decoded and authorized."),
		denied:    desc("swarm_transport_messages_denied_total", "Messages refused by authorization."),
		decodeErr: desc("swarm_transport_decode_errors_total", "Messages that could not be decoded."),
		refused:   desc("swarm_transport_streams_refused_total", "Streams refused: no valid identity or join token."),
		inbound:   desc("swarm_transport_inbound_streams", "Streams other nodes hold open to this one."),
		peers:     desc("swarm_transport_peers", "Peers this node has sent to."),
		backlog:   desc("swarm_loop_backlog", "Functions posted to the node's loop and not yet run."),
	}
}

func (c *transportCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sent, c.dropped, c.lost, c.recv, c.denied, c.decodeErr, c.refused, c.inbound, c.peers, c.backlog} {
		ch <- d
	}
}

func (c *transportCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.tr.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter(c.sent, s.Sent)
	counter(c.dropped, s.Dropped)
	counter(c.lost, s.Lost)
	counter(c.recv, s.Received)
	counter(c.denied, s.Denied)
	counter(c.decodeErr, s.DecodeErrors)
	counter(c.refused, s.Refused)
	gauge(c.inbound, float64(s.InboundStreams))
	gauge(c.peers, float64(s.Peers))
	gauge(c.backlog, float64(c.d.loop.Backlog()))
}
