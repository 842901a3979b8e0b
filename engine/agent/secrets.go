package agent

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Secrets and configs come with the assignments: a full message carries
// every one the set uses, an incremental one those it started to use and
// the IDs of those it stopped using. The agent keeps them in memory only,
// hands their data to the executor in ContainerSpec.Files when it prepares
// a task that references them, and forgets them when they are withdrawn.
// Their data is never logged or reported.

// SecretsDir is where a secret whose target is a bare name is mounted, as
// in Docker.
const SecretsDir = "/run/secrets"

// applyRefs takes a message's secrets and configs. It runs before the
// message's tasks are applied, so a task that arrives with its secret
// finds it.
func (a *Agent) applyRefs(m *api.Assignments) {
	if m.Full {
		a.secrets, a.configs = nil, nil
	}
	for _, id := range m.RemovedSecrets {
		delete(a.secrets, id)
	}
	for _, id := range m.RemovedConfigs {
		delete(a.configs, id)
	}
	for _, x := range m.Secrets {
		if x.GetId() == "" {
			continue
		}
		if a.secrets == nil {
			a.secrets = make(map[string]*api.Secret)
		}
		a.secrets[x.Id] = x
	}
	for _, x := range m.Configs {
		if x.GetId() == "" {
			continue
		}
		if a.configs == nil {
			a.configs = make(map[string]*api.Config)
		}
		a.configs[x.Id] = x
	}
}

// taskFiles is the files t's container gets: each secret at its target
// (under SecretsDir when the target is a bare name), each config at its
// target. A reference the agent does not hold (removed from the store
// before the task was sent) fails the task: it must not run without it.
func (a *Agent) taskFiles(t *api.Task) (map[string][]byte, error) {
	c := t.GetSpec().GetContainer()
	if len(c.GetSecrets()) == 0 && len(c.GetConfigs()) == 0 {
		return nil, nil
	}
	files := make(map[string][]byte, len(c.GetSecrets())+len(c.GetConfigs()))
	for _, r := range c.GetSecrets() {
		x := a.secrets[r.GetSecretId()]
		if x == nil {
			return nil, fmt.Errorf("task: secret %q is not available on this node", r.GetSecretName())
		}
		files[secretPath(r.GetTarget(), r.GetSecretName())] = x.GetSpec().GetData()
	}
	for _, r := range c.GetConfigs() {
		x := a.configs[r.GetConfigId()]
		if x == nil {
			return nil, fmt.Errorf("task: config %q is not available on this node", r.GetConfigName())
		}
		target := r.GetTarget()
		if target == "" {
			target = "/" + r.GetConfigName()
		}
		files[target] = x.GetSpec().GetData()
	}
	return files, nil
}

func secretPath(target, name string) string {
	if target == "" {
		target = name
	}
	if strings.HasPrefix(target, "/") {
		return target
	}
	return path.Join(SecretsDir, target)
}

// Secrets lists the IDs of the secrets the agent holds now, sorted (never
// their data): what the tasks in its set reference.
func (a *Agent) Secrets() []string { return sortedIDs(a.secrets) }

// Configs lists the IDs of the configs the agent holds now, sorted.
func (a *Agent) Configs() []string { return sortedIDs(a.configs) }

func sortedIDs[T any](m map[string]T) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Assigned lists the tasks in the agent's assignment set, by ID.
func (a *Agent) Assigned() []*api.Task {
	var out []*api.Task
	for _, id := range a.sortedTaskIDs() {
		if ts := a.tasks[id]; ts.inSet && ts.t != nil {
			out = append(out, ts.t)
		}
	}
	return out
}
