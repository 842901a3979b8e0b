package dispatcher

import (
	"slices"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Secrets and configs travel with a node's assignments and only there: a
// node holds a secret exactly while a task in its assignment set
// references it. The whole set's references go with a full message; an
// incremental message adds those the set started to use and withdraws
// (by ID) those it stopped using. Their data is never logged here: only
// IDs, and counts in the message's trace string.

// refSet is the secrets or configs a session's node holds, by ID.
type refSet map[string]bool

// hasRefs reports whether t references any secret or config.
func hasRefs(t *api.Task) bool {
	c := t.GetSpec().GetContainer()
	return len(c.GetSecrets()) > 0 || len(c.GetConfigs()) > 0
}

// refsOf collects the secret and config IDs of tasks, sorted and unique.
func refsOf(tasks func(yield func(*api.Task) bool)) (secrets, configs []string) {
	for t := range tasks {
		c := t.GetSpec().GetContainer()
		for _, r := range c.GetSecrets() {
			secrets = append(secrets, r.GetSecretId())
		}
		for _, r := range c.GetConfigs() {
			configs = append(configs, r.GetConfigId())
		}
	}
	slices.Sort(secrets)
	slices.Sort(configs)
	return slices.Compact(secrets), slices.Compact(configs)
}

// visibleTasks walks the tasks of s's node that are in its set now.
func (d *Dispatcher) visibleTasks(s *session) func(yield func(*api.Task) bool) {
	return func(yield func(*api.Task) bool) {
		for t := range d.st.EachTaskByNode(s.node) {
			if visibleOn(t) != "" && !yield(t) {
				return
			}
		}
	}
}

// fullRefs fills a full message's secrets and configs: every one tasks
// reference that the store has. The session then holds exactly those.
func (d *Dispatcher) fullRefs(s *session, m *api.Assignments) {
	s.secrets, s.configs = nil, nil
	secrets, configs := refsOf(slices.Values(m.Tasks))
	m.Secrets = d.addSecrets(s, secrets)
	m.Configs = d.addConfigs(s, configs)
}

// diffRefs fills an incremental message's secret and config changes, if
// the node holds any or a changed task references any (otherwise nothing
// can have changed, and the node's tasks are not walked).
func (d *Dispatcher) diffRefs(s *session, m *api.Assignments) {
	if len(s.secrets) == 0 && len(s.configs) == 0 && !slices.ContainsFunc(m.Tasks, hasRefs) {
		return
	}
	secrets, configs := refsOf(d.visibleTasks(s))
	m.RemovedSecrets = withdraw(&s.secrets, secrets)
	m.RemovedConfigs = withdraw(&s.configs, configs)
	m.Secrets = d.addSecrets(s, secrets)
	m.Configs = d.addConfigs(s, configs)
	d.stats.SecretsWithdrawn += uint64(len(m.RemovedSecrets))
	d.stats.ConfigsWithdrawn += uint64(len(m.RemovedConfigs))
}

// withdraw removes from held the IDs not in want (sorted) and returns
// them, sorted.
func withdraw(held *refSet, want []string) []string {
	var out []string
	for id := range *held {
		if _, ok := slices.BinarySearch(want, id); !ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	for _, id := range out {
		delete(*held, id)
	}
	return out
}

// addSecrets returns the secrets of ids (sorted) that s does not hold yet
// and the store has, and records them as held. A referenced secret the
// store lacks (removed while a task still runs) is skipped: the agent
// rejects a task whose secret it does not have.
func (d *Dispatcher) addSecrets(s *session, ids []string) []*api.Secret {
	var out []*api.Secret
	for _, id := range ids {
		if s.secrets[id] {
			continue
		}
		x := d.st.Secret(id)
		if x == nil {
			d.stats.RefsMissing++
			continue
		}
		if s.secrets == nil {
			s.secrets = make(refSet)
		}
		s.secrets[id] = true
		out = append(out, x)
	}
	d.stats.SecretsSent += uint64(len(out))
	return out
}

func (d *Dispatcher) addConfigs(s *session, ids []string) []*api.Config {
	var out []*api.Config
	for _, id := range ids {
		if s.configs[id] {
			continue
		}
		x := d.st.Config(id)
		if x == nil {
			d.stats.RefsMissing++
			continue
		}
		if s.configs == nil {
			s.configs = make(refSet)
		}
		s.configs[id] = true
		out = append(out, x)
	}
	d.stats.ConfigsSent += uint64(len(out))
	return out
}
