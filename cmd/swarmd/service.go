package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

func newServiceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Manage services"}
	cmd.AddCommand(newServiceCreateCmd(), newServiceLsCmd(), newServicePsCmd(), newServiceInspectCmd(),
		newServiceScaleCmd(), newServiceUpdateCmd(), newServiceRollbackCmd(), newServiceRmCmd())
	return cmd
}

// specFlags are the service spec's flags, shared by create and update
// (which applies only those given).
type specFlags struct {
	fs *pflag.FlagSet

	name, mode                         string
	replicas, maxReplicas              uint64
	constraints, prefs                 []string
	limitCPU, reserveCPU               string
	limitMem, reserveMem               string
	restartCond                        string
	restartDelay, restartWindow        time.Duration
	restartMax                         uint64
	upd, rb                            updateFlags
	healthCmd                          string
	healthInterval, healthTimeout      time.Duration
	healthStart                        time.Duration
	healthRetries                      int64
	noHealth                           bool
	secrets, configs, envs, labels     []string
	containerLabels, networks, publish []string
	stopGrace                          time.Duration
	image                              string
	args                               string
	force                              bool
	quiet, detach                      bool
	constraintAdd, constraintRm        []string
	prefAdd, prefRm                    []string
	envAdd, envRm, labelAdd, labelRm   []string
	secretAdd, secretRm                []string
	maxConcurrent, totalCompletions    uint64
}

type updateFlags struct {
	parallelism  uint64
	delay        time.Duration
	failure      string
	monitor      time.Duration
	maxFailRatio float64
	order        string
}

func (u *updateFlags) register(fs *pflag.FlagSet, prefix, what string) {
	fs.Uint64Var(&u.parallelism, prefix+"-parallelism", 1, "maximum number of tasks "+what+" at once (0: all)")
	fs.DurationVar(&u.delay, prefix+"-delay", 0, "delay between "+what+"s of batches")
	fs.StringVar(&u.failure, prefix+"-failure-action", "pause", "action on a failed "+what+": pause, continue, rollback")
	fs.DurationVar(&u.monitor, prefix+"-monitor", 5*time.Second, "how long to watch each task for failure after it is "+what)
	fs.Float64Var(&u.maxFailRatio, prefix+"-max-failure-ratio", 0, "failure rate tolerated during the "+what)
	fs.StringVar(&u.order, prefix+"-order", "stop-first", "order: stop-first or start-first")
}

func (s *specFlags) register(fs *pflag.FlagSet, create bool) {
	s.fs = fs
	if create {
		fs.StringVar(&s.name, "name", "", "service name")
		fs.StringVar(&s.mode, "mode", "replicated", "service mode: replicated, global, replicated-job, global-job")
		fs.StringArrayVar(&s.secrets, "secret", nil, "give the service a secret: NAME or source=NAME,target=PATH (repeatable)")
		fs.StringArrayVar(&s.configs, "config", nil, "give the service a config: NAME or source=NAME,target=PATH (repeatable)")
		fs.StringArrayVarP(&s.envs, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
		fs.StringArrayVarP(&s.labels, "label", "l", nil, "service label KEY=VALUE (repeatable)")
		fs.StringArrayVar(&s.containerLabels, "container-label", nil, "container label KEY=VALUE (repeatable)")
		fs.StringArrayVar(&s.networks, "network", nil, "network to attach (repeatable)")
		fs.StringArrayVarP(&s.publish, "publish", "p", nil, "publish a port: PUBLISHED:TARGET[/udp] or published=P,target=T,protocol=tcp,mode=ingress|host")
		fs.StringArrayVar(&s.constraints, "constraint", nil, "placement constraint, e.g. node.labels.zone==a (repeatable)")
		fs.StringArrayVar(&s.prefs, "placement-pref", nil, "placement preference, e.g. spread=node.labels.zone (repeatable)")
		fs.BoolVarP(&s.detach, "detach", "d", true, "return at once (the only behaviour: follow progress with service ps)")
		fs.BoolVarP(&s.quiet, "quiet", "q", false, "print only the service ID")
		fs.Uint64Var(&s.maxConcurrent, "max-concurrent", 0, "replicated-job: tasks run at once (default: replicas)")
	} else {
		fs.StringVar(&s.image, "image", "", "new image")
		fs.StringVar(&s.args, "args", "", "new command arguments (space separated)")
		fs.BoolVar(&s.force, "force", false, "replace the tasks even when nothing changed")
		fs.StringArrayVar(&s.constraintAdd, "constraint-add", nil, "add a placement constraint")
		fs.StringArrayVar(&s.constraintRm, "constraint-rm", nil, "remove a placement constraint")
		fs.StringArrayVar(&s.prefAdd, "placement-pref-add", nil, "add a placement preference")
		fs.StringArrayVar(&s.prefRm, "placement-pref-rm", nil, "remove a placement preference")
		fs.StringArrayVar(&s.envAdd, "env-add", nil, "add or replace an environment variable")
		fs.StringArrayVar(&s.envRm, "env-rm", nil, "remove an environment variable (KEY)")
		fs.StringArrayVar(&s.labelAdd, "label-add", nil, "add or replace a service label")
		fs.StringArrayVar(&s.labelRm, "label-rm", nil, "remove a service label (KEY)")
		fs.StringArrayVar(&s.secretAdd, "secret-add", nil, "add a secret")
		fs.StringArrayVar(&s.secretRm, "secret-rm", nil, "remove a secret (NAME)")
		fs.BoolVarP(&s.detach, "detach", "d", true, "return at once")
		fs.BoolVarP(&s.quiet, "quiet", "q", false, "print only the service ID")
	}
	fs.Uint64Var(&s.replicas, "replicas", 1, "number of tasks (replicated services and jobs)")
	fs.Uint64Var(&s.maxReplicas, "replicas-max-per-node", 0, "maximum tasks per node (0: unlimited)")
	fs.StringVar(&s.limitCPU, "limit-cpu", "", "CPU limit, e.g. 0.5")
	fs.StringVar(&s.limitMem, "limit-memory", "", "memory limit, e.g. 512M")
	fs.StringVar(&s.reserveCPU, "reserve-cpu", "", "CPUs reserved, e.g. 0.25")
	fs.StringVar(&s.reserveMem, "reserve-memory", "", "memory reserved, e.g. 256M")
	fs.StringVar(&s.restartCond, "restart-condition", "any", "restart when: none, on-failure, any")
	fs.DurationVar(&s.restartDelay, "restart-delay", 5*time.Second, "delay between restart attempts")
	fs.Uint64Var(&s.restartMax, "restart-max-attempts", 0, "maximum restarts before giving up (0: unlimited)")
	fs.DurationVar(&s.restartWindow, "restart-window", 0, "window over which restarts are counted")
	s.upd.register(fs, "update", "updated")
	s.rb.register(fs, "rollback", "rolled back")
	fs.StringVar(&s.healthCmd, "health-cmd", "", "command to run to check health")
	fs.DurationVar(&s.healthInterval, "health-interval", 0, "time between health checks")
	fs.DurationVar(&s.healthTimeout, "health-timeout", 0, "maximum time a check may take")
	fs.Int64Var(&s.healthRetries, "health-retries", 0, "consecutive failures that make a task unhealthy")
	fs.DurationVar(&s.healthStart, "health-start-period", 0, "grace period before failures count")
	fs.BoolVar(&s.noHealth, "no-healthcheck", false, "disable the health check")
	fs.DurationVar(&s.stopGrace, "stop-grace-period", 0, "time to wait before killing a container")
	fs.Uint64Var(&s.totalCompletions, "total-completions", 0, "replicated-job: completions wanted (default: replicas)")
}

func (s *specFlags) changed(name string) bool { return s.fs.Changed(name) }

// apply writes the flags into spec: on create every flag (defaults
// included), on update only those given.
func (s *specFlags) apply(spec *api.ServiceSpec, create bool) error {
	set := func(name string) bool { return create || s.changed(name) }
	t := spec.Task
	if t == nil {
		t = &api.TaskSpec{}
		spec.Task = t
	}
	if t.Container == nil {
		t.Container = &api.ContainerSpec{}
	}
	c := t.Container
	if create {
		spec.Name = s.name
		spec.Labels = kvMap(s.labels)
		c.Env = s.envs
		c.Labels = kvMap(s.containerLabels)
		t.Networks = s.networks
		for _, ref := range s.secrets {
			src, target := parseRef(ref)
			c.Secrets = append(c.Secrets, &api.SecretReference{SecretName: src, Target: target})
		}
		for _, ref := range s.configs {
			src, target := parseRef(ref)
			c.Configs = append(c.Configs, &api.ConfigReference{ConfigName: src, Target: target})
		}
		ports, err := parsePorts(s.publish)
		if err != nil {
			return err
		}
		if len(ports) > 0 {
			spec.Endpoint = &api.EndpointSpec{Ports: ports}
		}
		switch s.mode {
		case "replicated":
			spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: s.replicas}}
		case "global":
			spec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
		case "replicated-job":
			total := s.totalCompletions
			if total == 0 {
				total = s.replicas
			}
			mc := s.maxConcurrent
			if mc == 0 {
				mc = s.replicas
			}
			spec.Mode = &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{MaxConcurrent: mc, TotalCompletions: total}}
		case "global-job":
			spec.Mode = &api.ServiceSpec_GlobalJob{GlobalJob: &api.GlobalJob{}}
		default:
			return usagef("--mode %q: want replicated, global, replicated-job or global-job", s.mode)
		}
	} else {
		if s.changed("image") {
			c.Image = s.image
		}
		if s.changed("args") {
			c.Command = strings.Fields(s.args)
		}
		if s.changed("replicas") {
			switch m := spec.Mode.(type) {
			case *api.ServiceSpec_Replicated:
				m.Replicated.Replicas = s.replicas
			case *api.ServiceSpec_ReplicatedJob:
				m.ReplicatedJob.TotalCompletions = s.replicas
			default:
				return usagef("--replicas: only replicated services and jobs have replicas")
			}
		}
		if s.force {
			t.ForceUpdate++
		}
		c.Env = editList(c.Env, s.envAdd, s.envRm, func(e string) string { k, _, _ := strings.Cut(e, "="); return k })
		spec.Labels = editMap(spec.Labels, s.labelAdd, s.labelRm)
		for _, ref := range s.secretAdd {
			src, target := parseRef(ref)
			c.Secrets = append(c.Secrets, &api.SecretReference{SecretName: src, Target: target})
		}
		c.Secrets = slices.DeleteFunc(c.Secrets, func(r *api.SecretReference) bool { return slices.Contains(s.secretRm, r.SecretName) })
		if len(s.constraintAdd)+len(s.constraintRm)+len(s.prefAdd)+len(s.prefRm) > 0 && t.Placement == nil {
			t.Placement = &api.Placement{}
		}
		if t.Placement != nil {
			t.Placement.Constraints = editList(t.Placement.Constraints, s.constraintAdd, s.constraintRm, func(x string) string { return x })
			for _, p := range s.prefRm {
				t.Placement.Preferences = slices.DeleteFunc(t.Placement.Preferences, func(x *api.PlacementPreference) bool { return "spread="+x.Spread == p || x.Spread == p })
			}
			for _, p := range s.prefAdd {
				pp, err := parsePref(p)
				if err != nil {
					return err
				}
				t.Placement.Preferences = append(t.Placement.Preferences, pp)
			}
		}
	}
	if create && (len(s.constraints) > 0 || len(s.prefs) > 0 || s.maxReplicas > 0) {
		t.Placement = &api.Placement{Constraints: s.constraints, MaxReplicas: s.maxReplicas}
		for _, p := range s.prefs {
			pp, err := parsePref(p)
			if err != nil {
				return err
			}
			t.Placement.Preferences = append(t.Placement.Preferences, pp)
		}
	} else if !create && s.changed("replicas-max-per-node") {
		if t.Placement == nil {
			t.Placement = &api.Placement{}
		}
		t.Placement.MaxReplicas = s.maxReplicas
	}
	if err := s.applyResources(t, set); err != nil {
		return err
	}
	if set("restart-condition") || set("restart-delay") || set("restart-max-attempts") || set("restart-window") {
		if t.Restart == nil {
			t.Restart = &api.RestartPolicy{}
		}
		if set("restart-condition") {
			switch s.restartCond {
			case "any":
				t.Restart.Condition = api.RestartPolicy_ANY
			case "none":
				t.Restart.Condition = api.RestartPolicy_NONE
			case "on-failure":
				t.Restart.Condition = api.RestartPolicy_ON_FAILURE
			default:
				return usagef("--restart-condition %q: want none, on-failure or any", s.restartCond)
			}
		}
		if set("restart-delay") {
			t.Restart.Delay = int64(s.restartDelay)
		}
		if set("restart-max-attempts") {
			t.Restart.MaxAttempts = s.restartMax
		}
		if set("restart-window") {
			t.Restart.Window = int64(s.restartWindow)
		}
	}
	var err error
	if spec.Update, err = s.upd.apply(spec.Update, "update", s, create); err != nil {
		return err
	}
	if spec.Rollback, err = s.rb.apply(spec.Rollback, "rollback", s, create); err != nil {
		return err
	}
	if s.noHealth {
		c.Health = nil
	} else if s.healthCmd != "" || s.changed("health-interval") || s.changed("health-timeout") || s.changed("health-retries") || s.changed("health-start-period") {
		if c.Health == nil {
			c.Health = &api.HealthConfig{}
		}
		if s.changed("health-cmd") {
			c.Health.Test = []string{"CMD-SHELL", s.healthCmd}
		}
		if s.changed("health-interval") {
			c.Health.Interval = int64(s.healthInterval)
		}
		if s.changed("health-timeout") {
			c.Health.Timeout = int64(s.healthTimeout)
		}
		if s.changed("health-retries") {
			c.Health.Retries = s.healthRetries
		}
		if s.changed("health-start-period") {
			c.Health.StartPeriod = int64(s.healthStart)
		}
	}
	if set("stop-grace-period") && (create && s.stopGrace > 0 || !create) {
		c.StopGracePeriod = int64(s.stopGrace)
	}
	return nil
}

func (s *specFlags) applyResources(t *api.TaskSpec, set func(string) bool) error {
	res := func(r **api.Resources, cpuFlag, cpu, memFlag, mem string) error {
		if set(cpuFlag) && cpu != "" {
			f, err := strconv.ParseFloat(cpu, 64)
			if err != nil || f < 0 || f > math.MaxInt64/1e9 {
				return usagef("--%s %q: want a number of CPUs such as 0.5", cpuFlag, cpu)
			}
			if *r == nil {
				*r = &api.Resources{}
			}
			(*r).NanoCpus = int64(f * 1e9)
		}
		if set(memFlag) && mem != "" {
			b, err := units.RAMInBytes(mem)
			if err != nil {
				return usagef("--%s %q: %v", memFlag, mem, err)
			}
			if *r == nil {
				*r = &api.Resources{}
			}
			(*r).MemoryBytes = b
		}
		return nil
	}
	if err := res(&t.Limits, "limit-cpu", s.limitCPU, "limit-memory", s.limitMem); err != nil {
		return err
	}
	return res(&t.Reservations, "reserve-cpu", s.reserveCPU, "reserve-memory", s.reserveMem)
}

func (u *updateFlags) apply(cur *api.UpdateConfig, prefix string, s *specFlags, create bool) (*api.UpdateConfig, error) {
	names := []string{"-parallelism", "-delay", "-failure-action", "-monitor", "-max-failure-ratio", "-order"}
	any := create
	for _, n := range names {
		any = any || s.changed(prefix+n)
	}
	if !any {
		return cur, nil
	}
	set := func(n string) bool { return create || s.changed(prefix+n) }
	if cur == nil {
		cur = &api.UpdateConfig{}
	}
	if set("-parallelism") {
		cur.Parallelism = u.parallelism
	}
	if set("-delay") {
		cur.Delay = int64(u.delay)
	}
	if set("-monitor") {
		cur.Monitor = int64(u.monitor)
	}
	if set("-max-failure-ratio") {
		cur.MaxFailureRatio = u.maxFailRatio
	}
	if set("-failure-action") {
		switch u.failure {
		case "pause":
			cur.FailureAction = api.UpdateConfig_PAUSE
		case "continue":
			cur.FailureAction = api.UpdateConfig_CONTINUE
		case "rollback":
			if prefix == "rollback" {
				return nil, usagef("--rollback-failure-action: want pause or continue")
			}
			cur.FailureAction = api.UpdateConfig_ROLLBACK
		default:
			return nil, usagef("--%s-failure-action %q: want pause, continue or rollback", prefix, u.failure)
		}
	}
	if set("-order") {
		switch u.order {
		case "stop-first":
			cur.Order = api.UpdateConfig_STOP_FIRST
		case "start-first":
			cur.Order = api.UpdateConfig_START_FIRST
		default:
			return nil, usagef("--%s-order %q: want stop-first or start-first", prefix, u.order)
		}
	}
	return cur, nil
}

func kvMap(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func editMap(m map[string]string, add, rm []string) map[string]string {
	if len(add)+len(rm) == 0 {
		return m
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for _, k := range rm {
		delete(out, k)
	}
	for k, v := range kvMap(add) {
		out[k] = v
	}
	return out
}

// editList removes the entries whose key is in rm, then adds (replacing
// entries of the same key).
func editList(list, add, rm []string, key func(string) string) []string {
	if len(add)+len(rm) == 0 {
		return list
	}
	out := slices.DeleteFunc(slices.Clone(list), func(x string) bool {
		return slices.Contains(rm, key(x)) || slices.Contains(rm, x) || slices.ContainsFunc(add, func(a string) bool { return key(a) == key(x) })
	})
	return append(out, add...)
}

// parseRef reads NAME or source=NAME,target=PATH.
func parseRef(s string) (source, target string) {
	if !strings.Contains(s, "=") {
		return s, ""
	}
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "source", "src":
			source = v
		case "target", "dst", "destination":
			target = v
		}
	}
	return source, target
}

func parsePref(s string) (*api.PlacementPreference, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k != "spread" || v == "" {
		return nil, usagef("--placement-pref %q: want spread=node.labels.KEY", s)
	}
	return &api.PlacementPreference{Spread: v}, nil
}

// parsePorts reads docker's short (8080:80/udp) and long
// (published=8080,target=80,protocol=udp,mode=host) forms.
func parsePorts(specs []string) ([]*api.PortConfig, error) {
	var out []*api.PortConfig
	for _, s := range specs {
		p := &api.PortConfig{}
		if strings.Contains(s, "=") {
			for _, part := range strings.Split(s, ",") {
				k, v, _ := strings.Cut(part, "=")
				switch k {
				case "published":
					n, err := strconv.ParseUint(v, 10, 16)
					if err != nil {
						return nil, usagef("--publish %q: published port %q", s, v)
					}
					p.PublishedPort = uint32(n)
				case "target":
					n, err := strconv.ParseUint(v, 10, 16)
					if err != nil {
						return nil, usagef("--publish %q: target port %q", s, v)
					}
					p.TargetPort = uint32(n)
				case "protocol":
					if v == "udp" {
						p.Protocol = api.PortConfig_UDP
					}
				case "mode":
					if v == "host" {
						p.PublishMode = api.PortConfig_HOST
					}
				default:
					return nil, usagef("--publish %q: unknown field %q", s, k)
				}
			}
		} else {
			ports, proto, _ := strings.Cut(s, "/")
			pub, tgt, ok := strings.Cut(ports, ":")
			if !ok {
				tgt, pub = pub, ""
			}
			if pub != "" {
				n, err := strconv.ParseUint(pub, 10, 16)
				if err != nil {
					return nil, usagef("--publish %q: published port %q", s, pub)
				}
				p.PublishedPort = uint32(n)
			}
			n, err := strconv.ParseUint(tgt, 10, 16)
			if err != nil {
				return nil, usagef("--publish %q: target port %q", s, tgt)
			}
			p.TargetPort = uint32(n)
			if proto == "udp" {
				p.Protocol = api.PortConfig_UDP
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// ---- commands

func newServiceCreateCmd() *cobra.Command {
	var f clientFlags
	var s specFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a service",
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			spec := &api.ServiceSpec{Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: args[0], Command: args[1:]}}}
			if err := s.apply(spec, true); err != nil {
				return err
			}
			svc, err := c.control.CreateService(ctx, &rpc.CreateServiceRequest{Spec: spec})
			if err != nil {
				return err
			}
			return c.printService(svc, s.quiet)
		}),
	}
	cmd.Flags().SetInterspersed(false) // flags end at IMAGE, as in docker
	f.register(cmd)
	s.register(cmd.Flags(), true)
	return cmd
}

func (c *client) printService(svc *api.Service, quiet bool) error {
	if c.json() {
		return c.inspect([]proto.Message{svc})
	}
	fmt.Fprintln(c.out, svc.Id)
	return nil
}

func modeOf(spec *api.ServiceSpec) string {
	switch spec.GetMode().(type) {
	case *api.ServiceSpec_Global:
		return "global"
	case *api.ServiceSpec_ReplicatedJob:
		return "replicated job"
	case *api.ServiceSpec_GlobalJob:
		return "global job"
	}
	return "replicated"
}

func portsOf(spec *api.ServiceSpec) string {
	var out []string
	for _, p := range spec.GetEndpoint().GetPorts() {
		proto := "tcp"
		if p.Protocol == api.PortConfig_UDP {
			proto = "udp"
		}
		pub := "*"
		if p.PublishedPort != 0 {
			pub = strconv.Itoa(int(p.PublishedPort))
		}
		out = append(out, fmt.Sprintf("*:%s->%d/%s", pub, p.TargetPort, proto))
	}
	return strings.Join(out, ",")
}

// serviceRow is one line of `service ls --format json`.
type serviceRow struct {
	ID       string `json:"ID"`
	Name     string `json:"Name"`
	Mode     string `json:"Mode"`
	Replicas string `json:"Replicas"`
	Running  uint64 `json:"Running"`
	Desired  uint64 `json:"Desired"`
	Image    string `json:"Image"`
	Ports    string `json:"Ports"`
}

func newServiceLsCmd() *cobra.Command {
	var f clientFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List services (REPLICAS is running/desired)",
		Args:    cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client, _ []string) error {
			resp, err := c.control.ListServices(ctx, &rpc.ListServicesRequest{})
			if err != nil {
				return err
			}
			var rows [][]string
			var js []any
			for i, svc := range resp.Services {
				st := resp.Statuses[i]
				r := serviceRow{
					ID: svc.Id, Name: svc.Spec.GetName(), Mode: modeOf(svc.Spec),
					Replicas: fmt.Sprintf("%d/%d", st.Running, st.Desired), Running: st.Running, Desired: st.Desired,
					Image: svc.Spec.GetTask().GetContainer().GetImage(), Ports: portsOf(svc.Spec),
				}
				if quiet {
					fmt.Fprintln(c.out, svc.Id)
					continue
				}
				js = append(js, r)
				rows = append(rows, []string{short(r.ID, false), r.Name, r.Mode, r.Replicas, r.Image, r.Ports})
			}
			if quiet {
				return nil
			}
			if c.json() {
				return c.jsonLines(js)
			}
			c.table([]string{"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"}, rows)
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print IDs")
	return cmd
}

// taskRow is one line of `service ps --format json`.
type taskRow struct {
	ID           string `json:"ID"`
	Name         string `json:"Name"`
	Image        string `json:"Image"`
	Node         string `json:"Node"`
	NodeID       string `json:"NodeID"`
	DesiredState string `json:"DesiredState"`
	CurrentState string `json:"CurrentState"`
	State        string `json:"State"`
	Error        string `json:"Error"`
}

func stateName(s api.TaskState) string {
	n := strings.TrimPrefix(s.String(), "TASK_STATE_")
	return strings.ToUpper(n[:1]) + strings.ToLower(n[1:])
}

func newServicePsCmd() *cobra.Command {
	var f clientFlags
	var quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:   "ps SERVICE [SERVICE...]",
		Short: "List the tasks of services",
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			nodes, err := c.control.ListNodes(ctx, &rpc.ListNodesRequest{IncludeRemoved: true})
			if err != nil {
				return err
			}
			hostOf := map[string]string{}
			for _, n := range nodes.Nodes {
				hostOf[n.Id] = nodeName(n)
			}
			var rows [][]string
			var js []any
			for _, ref := range args {
				svc, err := c.control.GetService(ctx, &rpc.Ref{Ref: ref})
				if err != nil {
					return err
				}
				resp, err := c.control.ListTasks(ctx, &rpc.ListTasksRequest{Service: svc.Id})
				if err != nil {
					return err
				}
				tasks := resp.Tasks
				slices.SortStableFunc(tasks, func(a, b *api.Task) int {
					if a.Slot != b.Slot {
						return int(a.Slot) - int(b.Slot)
					}
					return int(b.GetMeta().GetCreatedAt() - a.GetMeta().GetCreatedAt())
				})
				for _, t := range tasks {
					if quiet {
						fmt.Fprintln(c.out, t.Id)
						continue
					}
					name := svc.Spec.GetName() + "." + strconv.FormatUint(t.Slot, 10)
					if t.Slot == 0 {
						name = svc.Spec.GetName() + "." + t.NodeId
					}
					st := t.GetStatus()
					r := taskRow{
						ID: t.Id, Name: name, Image: t.GetSpec().GetContainer().GetImage(), Node: hostOf[t.NodeId], NodeID: t.NodeId,
						DesiredState: stateName(t.DesiredState), State: stateName(st.GetState()),
						CurrentState: strings.TrimSpace(stateName(st.GetState()) + " " + ago(st.GetTimestamp())), Error: st.GetErr(),
					}
					if r.Error == "" && t.PendingReason != "" && st.GetState() <= api.TaskState_TASK_STATE_PENDING {
						r.Error = t.PendingReason
					}
					js = append(js, r)
					rows = append(rows, []string{short(r.ID, noTrunc), r.Name, r.Image, r.Node, r.DesiredState, r.CurrentState, r.Error})
				}
			}
			if quiet {
				return nil
			}
			if c.json() {
				return c.jsonLines(js)
			}
			c.table([]string{"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"}, rows)
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print task IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate IDs")
	return cmd
}

func newServiceInspectCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "inspect SERVICE [SERVICE...]",
		Short: "Show services as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			var objs []proto.Message
			for _, ref := range args {
				svc, err := c.control.GetService(ctx, &rpc.Ref{Ref: ref})
				if err != nil {
					return err
				}
				objs = append(objs, svc)
			}
			return c.inspect(objs)
		}),
	}
	f.register(cmd)
	return cmd
}

func newServiceScaleCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS [SERVICE=REPLICAS...]",
		Short: "Scale replicated services",
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			type scale struct {
				ref string
				n   uint64
			}
			var todo []scale
			for _, a := range args {
				ref, n, ok := strings.Cut(a, "=")
				v, err := strconv.ParseUint(n, 10, 64)
				if !ok || ref == "" || err != nil {
					return usagef("scale: %q is not SERVICE=REPLICAS", a)
				}
				todo = append(todo, scale{ref, v})
			}
			var errs []error
			for _, s := range todo {
				svc, err := c.control.ScaleService(ctx, &rpc.ScaleServiceRequest{Ref: s.ref, Replicas: s.n})
				if err != nil {
					errs = append(errs, err)
					fmt.Fprintf(c.errOut, "%s: %s\n", s.ref, errorText(err))
					continue
				}
				if c.json() {
					_ = c.jsonLines([]any{map[string]any{"ID": svc.Id, "Name": svc.Spec.GetName(), "Replicas": s.n}})
				} else {
					fmt.Fprintf(c.out, "%s scaled to %d\n", svc.Spec.GetName(), s.n)
				}
			}
			if len(errs) > 0 {
				return errs[0]
			}
			return nil
		}),
	}
	f.register(cmd)
	return cmd
}

func newServiceUpdateCmd() *cobra.Command {
	var f clientFlags
	var s specFlags
	var rollback bool
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] SERVICE",
		Short: "Update a service (only the options given change)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			if rollback {
				svc, err := c.control.RollbackService(ctx, &rpc.Ref{Ref: args[0]})
				if err != nil {
					return err
				}
				return c.printService(svc, s.quiet)
			}
			// Read, change, write at the version read; a concurrent change
			// makes the write conflict, and we read again.
			for attempt := 0; ; attempt++ {
				cur, err := c.control.GetService(ctx, &rpc.Ref{Ref: args[0]})
				if err != nil {
					return err
				}
				spec := proto.Clone(cur.Spec).(*api.ServiceSpec)
				if err := s.apply(spec, false); err != nil {
					return err
				}
				svc, err := c.control.UpdateService(ctx, &rpc.UpdateServiceRequest{Ref: cur.Id, Version: cur.GetMeta().GetVersion(), Spec: spec})
				if status.Code(err) == codes.Aborted && attempt < 3 {
					continue
				}
				if err != nil {
					return err
				}
				return c.printService(svc, s.quiet)
			}
		}),
	}
	f.register(cmd)
	s.register(cmd.Flags(), false)
	cmd.Flags().BoolVar(&rollback, "rollback", false, "roll back to the previous spec")
	return cmd
}

func newServiceRollbackCmd() *cobra.Command {
	var f clientFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:   "rollback SERVICE",
		Short: "Roll a service back to its previous spec",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			svc, err := c.control.RollbackService(ctx, &rpc.Ref{Ref: args[0]})
			if err != nil {
				return err
			}
			return c.printService(svc, quiet)
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the service ID")
	return cmd
}

func newServiceRmCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "rm SERVICE [SERVICE...]",
		Aliases: []string{"remove"},
		Short:   "Remove services",
		Args:    cobra.MinimumNArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			var errs []error
			for _, ref := range args {
				if _, err := c.control.RemoveService(ctx, &rpc.Ref{Ref: ref}); err != nil {
					errs = append(errs, err)
					fmt.Fprintf(c.errOut, "%s: %s\n", ref, errorText(err))
					continue
				}
				if !c.json() {
					fmt.Fprintln(c.out, ref)
				}
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			return nil
		}),
	}
	f.register(cmd)
	return cmd
}
