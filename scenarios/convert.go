package scenarios

import (
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// ServiceSpec turns a scenario's service into the api spec the control
// API takes. Secrets and configs are referenced by name; the control API
// resolves them.
func ServiceSpec(s Service) *api.ServiceSpec {
	res := &api.Resources{NanoCpus: s.Resources.NanoCPUs, MemoryBytes: s.Resources.MemoryBytes}
	task := &api.TaskSpec{
		Container: &api.ContainerSpec{Image: s.Image},
		// A scenario's resources are both what the scheduler reserves and
		// what the container may use.
		Reservations: res,
		Limits:       res,
		Restart: &api.RestartPolicy{
			Condition:   restartCondition(s.Restart.Condition),
			Delay:       int64(s.Restart.Delay),
			MaxAttempts: uint64(s.Restart.MaxAttempts),
			Window:      int64(s.Restart.Window),
		},
		Placement: &api.Placement{MaxReplicas: uint64(s.MaxPerNode)},
	}
	for _, c := range s.Constraints {
		task.Placement.Constraints = append(task.Placement.Constraints, c.String())
	}
	for _, sp := range s.Spread {
		task.Placement.Preferences = append(task.Placement.Preferences, &api.PlacementPreference{Spread: sp})
	}
	if h := s.Health; h != nil {
		task.Container.Health = &api.HealthConfig{
			Interval:    int64(h.Interval),
			Timeout:     int64(h.Timeout),
			Retries:     int64(h.Retries),
			StartPeriod: int64(h.StartPeriod),
		}
	}
	for _, name := range s.Secrets {
		task.Container.Secrets = append(task.Container.Secrets, &api.SecretReference{SecretName: name, Target: name})
	}
	for _, name := range s.Configs {
		task.Container.Configs = append(task.Container.Configs, &api.ConfigReference{ConfigName: name, Target: "/" + name})
	}
	spec := &api.ServiceSpec{Name: s.Name, Task: task}
	switch s.Mode {
	case Global:
		spec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	case ReplicatedJob:
		spec.Mode = &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{
			MaxConcurrent:    uint64(s.MaxConcurrent),
			TotalCompletions: uint64(s.Completions),
		}}
	case GlobalJob:
		spec.Mode = &api.ServiceSpec_GlobalJob{GlobalJob: &api.GlobalJob{}}
	default:
		spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: uint64(s.Replicas)}}
	}
	if !s.Mode.IsJob() {
		spec.Update = updateConfig(s.Update)
		spec.Rollback = updateConfig(s.Rollback)
	}
	return spec
}

func restartCondition(c RestartCondition) api.RestartPolicy_Condition {
	switch c {
	case RestartNone:
		return api.RestartPolicy_NONE
	case RestartOnFailure:
		return api.RestartPolicy_ON_FAILURE
	}
	return api.RestartPolicy_ANY
}

func updateConfig(u UpdatePolicy) *api.UpdateConfig {
	uc := &api.UpdateConfig{
		Parallelism:     uint64(u.Parallelism),
		Delay:           int64(u.Delay),
		Monitor:         int64(u.Monitor),
		MaxFailureRatio: u.MaxFailureRatio,
	}
	switch u.FailureAction {
	case FailureContinue:
		uc.FailureAction = api.UpdateConfig_CONTINUE
	case FailureRollback:
		uc.FailureAction = api.UpdateConfig_ROLLBACK
	default:
		uc.FailureAction = api.UpdateConfig_PAUSE
	}
	if u.Order == StartFirst {
		uc.Order = api.UpdateConfig_START_FIRST
	}
	return uc
}

// rollbackGuard tells a rollback step asked again after an ambiguous
// failure whether the earlier attempt applied. A rollback swaps spec and
// previous spec, so asked twice it would undo itself.
type rollbackGuard struct{ from, to *api.ServiceSpec }

// applied notes, on the first attempt (retried false), the swap it asks
// for; on a retry it reports whether cur shows that swap made.
func (g *rollbackGuard) applied(cur *api.Service, retried bool) bool {
	if !retried {
		g.from, g.to = cur.GetSpec(), cur.GetPreviousSpec()
		return false
	}
	return g.to != nil && proto.Equal(cur.GetSpec(), g.to) && proto.Equal(cur.GetPreviousSpec(), g.from)
}
