package api_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/scheduler"
)

func validService() *api.ServiceSpec {
	return &api.ServiceSpec{
		Name:   "web",
		Labels: map[string]string{"tier": "front"},
		Task: &api.TaskSpec{
			Container: &api.ContainerSpec{
				Image:   "web:1",
				Env:     []string{"A=1", "B"},
				Health:  &api.HealthConfig{Interval: 5e9, Timeout: 2e9, Retries: 3, StartPeriod: 10e9},
				Secrets: []*api.SecretReference{{SecretName: "db-password"}, {SecretId: "s1", SecretName: "tls", Target: "cert.pem"}},
				Configs: []*api.ConfigReference{{ConfigName: "app-conf"}},
			},
			Limits:       &api.Resources{NanoCpus: 1e9, MemoryBytes: 512 << 20},
			Reservations: &api.Resources{NanoCpus: 5e8, MemoryBytes: 256 << 20},
			Restart:      &api.RestartPolicy{Condition: api.RestartPolicy_ON_FAILURE, Delay: 5e9, MaxAttempts: 3},
			Placement: &api.Placement{
				Constraints: []string{"node.labels.zone==a", "node.role != manager"},
				Preferences: []*api.PlacementPreference{{Spread: "node.labels.zone"}},
				MaxReplicas: 2,
			},
			Networks: []string{"net1", "net2"},
		},
		Mode:     &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 30}},
		Update:   &api.UpdateConfig{Parallelism: 2, Delay: 10e9, FailureAction: api.UpdateConfig_ROLLBACK, Monitor: 30e9, MaxFailureRatio: 0.2},
		Rollback: &api.UpdateConfig{Parallelism: 1},
		Endpoint: &api.EndpointSpec{Ports: []*api.PortConfig{
			{TargetPort: 80, PublishedPort: 8080},
			{TargetPort: 80, PublishedPort: 8080, Protocol: api.PortConfig_UDP},
			{TargetPort: 443},
			{TargetPort: 443},
		}},
	}
}

func TestValidateServiceSpecValid(t *testing.T) {
	if err := api.ValidateServiceSpec(validService()); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	job := validService()
	job.Update, job.Rollback = nil, nil
	job.Mode = &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{MaxConcurrent: 3, TotalCompletions: 10}}
	if err := api.ValidateServiceSpec(job); err != nil {
		t.Fatalf("valid job refused: %v", err)
	}
	job.Mode = &api.ServiceSpec_GlobalJob{GlobalJob: &api.GlobalJob{}}
	if err := api.ValidateServiceSpec(job); err != nil {
		t.Fatalf("valid global job refused: %v", err)
	}
}

// Every field error, one mutation at a time: the test pins each message,
// since users read them.
func TestValidateServiceSpecFieldErrors(t *testing.T) {
	long := strings.Repeat("a", 64)
	cases := []struct {
		name   string
		mutate func(s *api.ServiceSpec)
		want   string
	}{
		{"no name", func(s *api.ServiceSpec) { s.Name = "" }, "spec.name: required"},
		{"long name", func(s *api.ServiceSpec) { s.Name = long },
			`spec.name: "` + long + `" is 64 characters long; at most 63 are allowed`},
		{"name starts badly", func(s *api.ServiceSpec) { s.Name = "-web" }, `spec.name: "-web" must start with a letter or a digit`},
		{"name bad char", func(s *api.ServiceSpec) { s.Name = "web/1" }, `spec.name: "web/1" may contain only letters, digits, '_', '.' and '-'`},
		{"empty label key", func(s *api.ServiceSpec) { s.Labels = map[string]string{"": "x"} }, "spec.labels: label keys must not be empty"},
		{"label key space", func(s *api.ServiceSpec) { s.Labels = map[string]string{"a b": "x"} }, `spec.labels: label key "a b" must not contain whitespace`},
		{"no task", func(s *api.ServiceSpec) { s.Task = nil }, "spec.task: required"},
		{"no container", func(s *api.ServiceSpec) { s.Task.Container = nil }, "spec.task.container: required"},
		{"no image", func(s *api.ServiceSpec) { s.Task.Container.Image = "" }, "spec.task.container.image: required"},
		{"image space", func(s *api.ServiceSpec) { s.Task.Container.Image = "web 1" },
			`spec.task.container.image: "web 1" must not contain whitespace or control characters`},
		{"image long", func(s *api.ServiceSpec) { s.Task.Container.Image = strings.Repeat("i", 256) },
			"spec.task.container.image: 256 characters long; at most 255 are allowed"},
		{"env no name", func(s *api.ServiceSpec) { s.Task.Container.Env = []string{"A=1", "=x"} },
			`spec.task.container.env[1]: "=x" has no variable name; expected NAME=VALUE`},
		{"container label", func(s *api.ServiceSpec) { s.Task.Container.Labels = map[string]string{" ": "x"} },
			"spec.task.container.labels: label keys must not be empty"},
		{"stop grace", func(s *api.ServiceSpec) { s.Task.Container.StopGracePeriod = -1 },
			"spec.task.container.stop_grace_period: must not be negative"},
		{"health interval", func(s *api.ServiceSpec) { s.Task.Container.Health.Interval = -1 },
			"spec.task.container.health.interval: must not be negative"},
		{"health timeout", func(s *api.ServiceSpec) { s.Task.Container.Health.Timeout = -1 },
			"spec.task.container.health.timeout: must not be negative"},
		{"health start period", func(s *api.ServiceSpec) { s.Task.Container.Health.StartPeriod = -1 },
			"spec.task.container.health.start_period: must not be negative"},
		{"health retries", func(s *api.ServiceSpec) { s.Task.Container.Health.Retries = -1 },
			"spec.task.container.health.retries: must not be negative"},
		{"secret unnamed", func(s *api.ServiceSpec) { s.Task.Container.Secrets[1] = &api.SecretReference{Target: "x"} },
			"spec.task.container.secrets[1]: names no secret: set secret_id or secret_name"},
		{"secret bad name", func(s *api.ServiceSpec) { s.Task.Container.Secrets[0].SecretName = "a b" },
			`spec.task.container.secrets[0].secret_name: "a b" may contain only letters, digits, '_', '.' and '-'`},
		{"secret target dup", func(s *api.ServiceSpec) { s.Task.Container.Secrets[1].Target = "db-password" },
			`spec.task.container.secrets[1].target: "db-password" is already the target of secrets[0]`},
		{"secret target NUL", func(s *api.ServiceSpec) { s.Task.Container.Secrets[1].Target = "a\x00" },
			"spec.task.container.secrets[1].target: must not contain NUL"},
		{"config unnamed", func(s *api.ServiceSpec) { s.Task.Container.Configs[0] = &api.ConfigReference{} },
			"spec.task.container.configs[0]: names no config: set config_id or config_name"},
		{"config target dup", func(s *api.ServiceSpec) {
			s.Task.Container.Configs = append(s.Task.Container.Configs, &api.ConfigReference{ConfigId: "c2", Target: "app-conf"})
		}, `spec.task.container.configs[1].target: "app-conf" is already the target of configs[0]`},
		{"limit cpu", func(s *api.ServiceSpec) { s.Task.Limits.NanoCpus = -1 }, "spec.task.limits.nano_cpus: must not be negative"},
		{"limit memory", func(s *api.ServiceSpec) { s.Task.Limits.MemoryBytes = -1 }, "spec.task.limits.memory_bytes: must not be negative"},
		{"reservation cpu", func(s *api.ServiceSpec) { s.Task.Reservations.NanoCpus = -5 },
			"spec.task.reservations.nano_cpus: must not be negative"},
		{"reservation memory", func(s *api.ServiceSpec) { s.Task.Reservations.MemoryBytes = -5 },
			"spec.task.reservations.memory_bytes: must not be negative"},
		{"reservation over cpu limit", func(s *api.ServiceSpec) { s.Task.Reservations.NanoCpus = 2e9 },
			"spec.task.reservations.nano_cpus: reserves 2000000000 nano-CPUs, more than the limit of 1000000000"},
		{"reservation over memory limit", func(s *api.ServiceSpec) { s.Task.Reservations.MemoryBytes = 1 << 30 },
			"spec.task.reservations.memory_bytes: reserves 1073741824 bytes, more than the limit of 536870912"},
		{"restart condition", func(s *api.ServiceSpec) { s.Task.Restart.Condition = 9 },
			"spec.task.restart.condition: unknown condition 9; expected any, none or on-failure"},
		{"restart delay", func(s *api.ServiceSpec) { s.Task.Restart.Delay = -1 }, "spec.task.restart.delay: must not be negative"},
		{"restart window", func(s *api.ServiceSpec) { s.Task.Restart.Window = -1 }, "spec.task.restart.window: must not be negative"},
		{"constraint", func(s *api.ServiceSpec) { s.Task.Placement.Constraints[1] = "node.labels.zone=a" },
			`spec.task.placement.constraints[1]: malformed constraint "node.labels.zone=a": expected == or !=`},
		{"spread empty", func(s *api.ServiceSpec) { s.Task.Placement.Preferences[0].Spread = "" },
			"spec.task.placement.preferences[0].spread: required: a node descriptor such as node.labels.zone"},
		{"spread key", func(s *api.ServiceSpec) { s.Task.Placement.Preferences[0].Spread = "zone" },
			`spec.task.placement.preferences[0].spread: unknown key "zone": expected node.id, node.hostname, node.role, node.labels.<name> or engine.labels.<name>`},
		{"max per node", func(s *api.ServiceSpec) { s.Task.Placement.MaxReplicas = math.MaxUint64 },
			"spec.task.placement.max_replicas: 18446744073709551615 is more than the 1000000 allowed"},
		{"network empty", func(s *api.ServiceSpec) { s.Task.Networks[1] = "" }, "spec.task.networks[1]: network must not be empty"},
		{"network dup", func(s *api.ServiceSpec) { s.Task.Networks[1] = "net1" },
			`spec.task.networks[1]: network "net1" is already listed at networks[0]`},
		{"no mode", func(s *api.ServiceSpec) { s.Mode = nil },
			"spec.mode: required: one of replicated, global, replicated_job or global_job"},
		{"replicas", func(s *api.ServiceSpec) {
			s.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: math.MaxUint64}}
		},
			"spec.mode.replicated.replicas: 18446744073709551615 is more than the 1000000 allowed (a negative number sent unsigned?)"},
		{"job completions", func(s *api.ServiceSpec) {
			s.Update, s.Rollback = nil, nil
			s.Mode = &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{TotalCompletions: 1 << 40}}
		}, "spec.mode.replicated_job.total_completions: 1099511627776 is more than the 1000000 allowed"},
		{"job concurrency", func(s *api.ServiceSpec) {
			s.Update, s.Rollback = nil, nil
			s.Mode = &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{MaxConcurrent: 1 << 40}}
		}, "spec.mode.replicated_job.max_concurrent: 1099511627776 is more than the 1000000 allowed"},
		{"job update", func(s *api.ServiceSpec) {
			s.Rollback = nil
			s.Mode = &api.ServiceSpec_GlobalJob{GlobalJob: &api.GlobalJob{}}
		}, "spec.update: not allowed for a job: updating a job runs it again instead of rolling its tasks"},
		{"job rollback", func(s *api.ServiceSpec) {
			s.Update = nil
			s.Mode = &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{}}
		}, "spec.rollback: not allowed for a job: a job is never rolled back"},
		{"parallelism", func(s *api.ServiceSpec) { s.Update.Parallelism = math.MaxUint64 },
			"spec.update.parallelism: 18446744073709551615 is more than the 1000000 allowed (0 means all at once)"},
		{"update delay", func(s *api.ServiceSpec) { s.Update.Delay = -1 }, "spec.update.delay: must not be negative"},
		{"update monitor", func(s *api.ServiceSpec) { s.Update.Monitor = -1 }, "spec.update.monitor: must not be negative"},
		{"failure action", func(s *api.ServiceSpec) { s.Update.FailureAction = 7 },
			"spec.update.failure_action: unknown action 7; expected pause, continue or rollback"},
		{"rollback of rollback", func(s *api.ServiceSpec) { s.Rollback.FailureAction = api.UpdateConfig_ROLLBACK },
			"spec.rollback.failure_action: a failed rollback cannot itself be rolled back; use pause or continue"},
		{"failure ratio high", func(s *api.ServiceSpec) { s.Update.MaxFailureRatio = 1.5 },
			"spec.update.max_failure_ratio: 1.5 is outside [0, 1]"},
		{"failure ratio negative", func(s *api.ServiceSpec) { s.Rollback.MaxFailureRatio = -0.1 },
			"spec.rollback.max_failure_ratio: -0.1 is outside [0, 1]"},
		{"failure ratio NaN", func(s *api.ServiceSpec) { s.Update.MaxFailureRatio = math.NaN() },
			"spec.update.max_failure_ratio: NaN is outside [0, 1]"},
		{"order", func(s *api.ServiceSpec) { s.Update.Order = 3 },
			"spec.update.order: unknown order 3; expected stop-first or start-first"},
		{"nil port", func(s *api.ServiceSpec) { s.Endpoint.Ports[2] = nil }, "spec.endpoint.ports[2]: must not be empty"},
		{"port protocol", func(s *api.ServiceSpec) { s.Endpoint.Ports[2].Protocol = 5 },
			"spec.endpoint.ports[2].protocol: unknown protocol 5; expected tcp or udp"},
		{"publish mode", func(s *api.ServiceSpec) { s.Endpoint.Ports[2].PublishMode = 5 },
			"spec.endpoint.ports[2].publish_mode: unknown mode 5; expected ingress or host"},
		{"target port zero", func(s *api.ServiceSpec) { s.Endpoint.Ports[0].TargetPort = 0 },
			"spec.endpoint.ports[0].target_port: 0 is not a port: expected 1 to 65535"},
		{"target port high", func(s *api.ServiceSpec) { s.Endpoint.Ports[0].TargetPort = 70000 },
			"spec.endpoint.ports[0].target_port: 70000 is not a port: expected 1 to 65535"},
		{"published port high", func(s *api.ServiceSpec) { s.Endpoint.Ports[0].PublishedPort = 65536 },
			"spec.endpoint.ports[0].published_port: 65536 is not a port: expected 1 to 65535, or 0 to have one allocated"},
		{"published port dup", func(s *api.ServiceSpec) {
			s.Endpoint.Ports[3] = &api.PortConfig{TargetPort: 81, PublishedPort: 8080, PublishMode: api.PortConfig_HOST}
		}, "spec.endpoint.ports[3].published_port: 8080/tcp is already published by ports[0]"},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if seen[tc.want] {
				t.Fatalf("two cases expect %q", tc.want)
			}
			seen[tc.want] = true
			spec := validService()
			tc.mutate(spec)
			err := api.ValidateServiceSpec(spec)
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Fatalf("error\n got %q\nwant %q", got, tc.want)
			}
			if !errors.Is(err, api.ErrInvalidSpec) {
				t.Fatalf("errors.Is(%v, ErrInvalidSpec) = false", err)
			}
			var ve *api.ValidationError
			if !errors.As(err, &ve) || ve.Field+": "+ve.Reason != tc.want {
				t.Fatalf("errors.As gave %+v", ve)
			}
		})
	}
}

func TestValidateServiceSpecNil(t *testing.T) {
	if err := api.ValidateServiceSpec(nil); err == nil || err.Error() != "spec: required" {
		t.Fatalf("nil spec: %v", err)
	}
}

// Several failures come back together, in field order, each findable.
func TestValidateServiceSpecJoinsErrors(t *testing.T) {
	spec := validService()
	spec.Name = ""
	spec.Task.Container.Image = ""
	spec.Task.Reservations.MemoryBytes = -1
	spec.Update.MaxFailureRatio = 2
	err := api.ValidateServiceSpec(spec)
	fields := api.FieldErrors(err)
	var got []string
	for _, f := range fields {
		got = append(got, f.Field)
	}
	want := []string{"spec.name", "spec.task.container.image", "spec.task.reservations.memory_bytes", "spec.update.max_failure_ratio"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("fields %v, want %v", got, want)
	}
	if !errors.Is(err, api.ErrInvalidSpec) {
		t.Fatal("joined error is not ErrInvalidSpec")
	}
	if n := strings.Count(err.Error(), "\n"); n != 3 {
		t.Fatalf("joined message has %d newlines, want 3:\n%v", n, err)
	}
}

// Validation never modifies the spec it checks.
func TestValidateServiceSpecDoesNotModify(t *testing.T) {
	spec := validService()
	before := proto.Clone(spec)
	_ = api.ValidateServiceSpec(spec)
	if !proto.Equal(before, spec) {
		t.Fatal("validation changed the spec")
	}
}

func TestValidateNodeSpec(t *testing.T) {
	cases := []struct {
		spec *api.NodeSpec
		want string
	}{
		{&api.NodeSpec{}, ""},
		{&api.NodeSpec{Name: "w1", Labels: map[string]string{"zone": "a"}, DesiredRole: api.NodeRole_NODE_ROLE_MANAGER, Availability: api.NodeAvailability_NODE_AVAILABILITY_DRAIN}, ""},
		{nil, "spec: required"},
		{&api.NodeSpec{Name: "_w"}, `spec.name: "_w" must start with a letter or a digit`},
		{&api.NodeSpec{Labels: map[string]string{"": "a"}}, "spec.labels: label keys must not be empty"},
		{&api.NodeSpec{DesiredRole: 4}, "spec.desired_role: unknown role 4; expected worker or manager"},
		{&api.NodeSpec{Availability: 9}, "spec.availability: unknown availability 9; expected active, pause or drain"},
	}
	for _, tc := range cases {
		err := api.ValidateNodeSpec(tc.spec)
		if got := errString(err); got != tc.want {
			t.Errorf("ValidateNodeSpec(%v) = %q, want %q", tc.spec, got, tc.want)
		}
	}
}

func TestValidateSecretAndConfigSpec(t *testing.T) {
	big := make([]byte, api.MaxSecretSize+1)
	cases := []struct {
		name, data string
		want       string
	}{
		{"db-password", "x", ""},
		{"", "x", "spec.name: required"},
		{"a:b", "x", `spec.name: "a:b" may contain only letters, digits, '_', '.' and '-'`},
		{"p", "", "spec.data: must not be empty"},
		{"p", string(big), "spec.data: 512001 bytes; at most 512000 (500 KiB) are allowed"},
	}
	for _, tc := range cases {
		if got := errString(api.ValidateSecretSpec(&api.SecretSpec{Name: tc.name, Data: []byte(tc.data)})); got != tc.want {
			t.Errorf("secret %q: %q, want %q", tc.name, got, tc.want)
		}
		if got := errString(api.ValidateConfigSpec(&api.ConfigSpec{Name: tc.name, Data: []byte(tc.data)})); got != tc.want {
			t.Errorf("config %q: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := errString(api.ValidateSecretSpec(nil)); got != "spec: required" {
		t.Errorf("nil secret: %q", got)
	}
	if got := errString(api.ValidateConfigSpec(nil)); got != "spec: required" {
		t.Errorf("nil config: %q", got)
	}
}

func TestValidateNetworkSpec(t *testing.T) {
	cases := []struct {
		spec *api.NetworkSpec
		want string
	}{
		{&api.NetworkSpec{Name: "backend"}, ""},
		{&api.NetworkSpec{Name: "backend", Driver: "overlay", Subnet: "10.1.0.0/16"}, ""},
		{&api.NetworkSpec{Name: "v6", Subnet: "fd00::/104"}, ""},
		{nil, "spec: required"},
		{&api.NetworkSpec{}, "spec.name: required"},
		{&api.NetworkSpec{Name: "n", Driver: "my driver"}, `spec.driver: "my driver" may contain only letters, digits, '_', '.' and '-'`},
		{&api.NetworkSpec{Name: "n", Subnet: "10.1.0.0"}, `spec.subnet: "10.1.0.0" is not in CIDR notation (e.g. 10.0.1.0/24)`},
		{&api.NetworkSpec{Name: "n", Subnet: "10.1.0.1/24"}, `spec.subnet: "10.1.0.1/24" has host bits set; did you mean 10.1.0.0/24?`},
		{&api.NetworkSpec{Name: "n", Subnet: "10.0.0.0/7"}, `spec.subnet: "10.0.0.0/7" leaves 25 host bits; between 2 and 24 are allowed (e.g. /8 to /30 for IPv4)`},
		{&api.NetworkSpec{Name: "n", Subnet: "10.0.0.0/31"}, `spec.subnet: "10.0.0.0/31" leaves 1 host bits; between 2 and 24 are allowed (e.g. /8 to /30 for IPv4)`},
	}
	for _, tc := range cases {
		if got := errString(api.ValidateNetworkSpec(tc.spec)); got != tc.want {
			t.Errorf("ValidateNetworkSpec(%v) = %q, want %q", tc.spec, got, tc.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ----------------------------------------------------------- constraints

func TestParseConstraint(t *testing.T) {
	cases := []struct {
		in   string
		want api.Constraint
		err  string
	}{
		{in: "node.labels.zone==a", want: api.Constraint{Key: "node.labels.zone", Op: api.OpEqual, Value: "a"}},
		{in: " node.role != manager ", want: api.Constraint{Key: "node.role", Op: api.OpNotEqual, Value: "manager"}},
		{in: "node.id==abc", want: api.Constraint{Key: "node.id", Op: api.OpEqual, Value: "abc"}},
		{in: "node.hostname!=w1", want: api.Constraint{Key: "node.hostname", Op: api.OpNotEqual, Value: "w1"}},
		{in: "engine.labels.os/arch==x86_64", want: api.Constraint{Key: "engine.labels.os/arch", Op: api.OpEqual, Value: "x86_64"}},
		{in: "node.labels.region==us-east-1", want: api.Constraint{Key: "node.labels.region", Op: api.OpEqual, Value: "us-east-1"}},
		{in: "node.labels.zone=a", err: `malformed constraint "node.labels.zone=a": expected == or !=`},
		{in: "", err: `malformed constraint "": expected == or !=`},
		{in: "==a", err: `malformed constraint "==a": missing key before ==`},
		{in: "node.role==", err: `malformed constraint "node.role==": missing value after ==`},
		{in: "node.role!= ", err: `malformed constraint "node.role!= ": missing value after !=`},
		{in: "node.zone==a", err: `malformed constraint "node.zone==a": unknown key "node.zone": expected node.id, node.hostname, node.role, node.labels.<name> or engine.labels.<name>`},
		{in: "node.labels.==a", err: `malformed constraint "node.labels.==a": key "node.labels." names no label`},
		{in: "node.labels.a b==c", err: `malformed constraint "node.labels.a b==c": label name "a b" may contain only letters, digits, '.', '_', '-' and '/'`},
		{in: "node.id==a==b", err: `malformed constraint "node.id==a==b": value "a==b" contains '=' or '!': only one operator is allowed`},
		{in: "node.id!==a", err: `malformed constraint "node.id!==a": value "=a" contains '=' or '!': only one operator is allowed`},
		{in: "node.role==boss", err: `malformed constraint "node.role==boss": role "boss" is neither manager nor worker`},
		{in: "node.labels.x==a\tb", err: `malformed constraint "node.labels.x==a\tb": value "a\tb" must not contain control characters`},
		{in: "Node.Labels.Zone==A", want: api.Constraint{Key: "node.labels.Zone", Op: api.OpEqual, Value: "A"}},
		{in: "NODE.ROLE==Manager", want: api.Constraint{Key: "node.role", Op: api.OpEqual, Value: "Manager"}},
		{in: "node.labels.dc==us east", want: api.Constraint{Key: "node.labels.dc", Op: api.OpEqual, Value: "us east"}},
	}
	for _, tc := range cases {
		got, err := api.ParseConstraint(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseConstraint(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			if err != nil && !errors.Is(err, api.ErrMalformedConstraint) {
				t.Errorf("ParseConstraint(%q) error does not wrap ErrMalformedConstraint", tc.in)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseConstraint(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestConstraintMatches(t *testing.T) {
	n := &api.Node{
		Id:          "n1",
		Role:        api.NodeRole_NODE_ROLE_MANAGER,
		Spec:        &api.NodeSpec{Labels: map[string]string{"zone": "a"}},
		Description: &api.NodeDescription{Hostname: "m1", EngineLabels: map[string]string{"disk": "ssd"}},
	}
	cases := []struct {
		c    string
		want bool
	}{
		{"node.id==n1", true},
		{"node.id!=n1", false},
		{"node.hostname==M1", true}, // values compare without case
		{"node.role==manager", true},
		{"node.role!=manager", false},
		{"node.role==worker", false},
		{"node.labels.zone==a", true},
		{"node.labels.zone==b", false},
		{"node.labels.zone!=b", true},
		{"node.labels.rack==1", false}, // missing label: == fails
		{"node.labels.rack!=1", true},  // ...and != holds
		{"engine.labels.disk==ssd", true},
		{"engine.labels.disk!=ssd", false},
	}
	for _, tc := range cases {
		c, err := api.ParseConstraint(tc.c)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Matches(n); got != tc.want {
			t.Errorf("%s on node: %v, want %v", tc.c, got, tc.want)
		}
	}
	w := &api.Node{Id: "w"}
	if c, _ := api.ParseConstraint("node.role==worker"); !c.Matches(w) {
		t.Error("a bare node is a worker")
	}
	cs, err := api.ParseConstraints([]string{"node.role==manager", "node.labels.zone==a"})
	if err != nil || !api.MatchesAll(cs, n) || api.MatchesAll(cs, w) {
		t.Errorf("MatchesAll: %v", err)
	}
	if _, err := api.ParseConstraints([]string{"node.role==manager", "bad"}); err == nil {
		t.Error("ParseConstraints accepted a bad constraint")
	}
}

// FuzzParseConstraint: the parser never panics, and what it accepts
// prints back to a string it parses to the same constraint.
func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{
		"node.labels.zone==a", "node.role != manager", "node.id==x", "engine.labels.a/b!=c",
		"node.labels.zone=a", "==", "!=", "node.role!==a", "node.labels.==", "\x00==\x00", "node.hostname==é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := api.ParseConstraint(s)
		if err != nil {
			if !errors.Is(err, api.ErrMalformedConstraint) {
				t.Fatalf("error %v does not wrap ErrMalformedConstraint", err)
			}
			return
		}
		again, err := api.ParseConstraint(c.String())
		if err != nil || again != c {
			t.Fatalf("%q parsed to %+v, whose String %q parses to %+v, %v", s, c, c.String(), again, err)
		}
		// What validation admits, the scheduler can place.
		if err := scheduler.ValidatePlacement(&api.Placement{Constraints: []string{s}}); err != nil {
			t.Fatalf("%q: validation accepts it, the scheduler refuses it: %v", s, err)
		}
		_ = c.Matches(&api.Node{})
	})
}
