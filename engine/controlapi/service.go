package controlapi

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

// ServiceFilter selects services in ListServices; zero fields select all.
type ServiceFilter struct {
	NamePrefix string
	// Labels must all be on the service; an empty value only asks for the
	// key.
	Labels map[string]string
}

// CreateService creates a service from spec. References to secrets,
// configs and networks may name them by ID or by name; the stored spec
// holds IDs (and names). done gets the service as stored.
func (s *Server) CreateService(spec *api.ServiceSpec, done func(*api.Service, error)) {
	if err := api.ValidateServiceSpec(spec); err != nil {
		done(nil, invalidSpec("service", err))
		return
	}
	spec = proto.Clone(spec).(*api.ServiceSpec) // ours from here: normalized in place
	svc := &api.Service{Id: api.NewID(s.rand), Spec: spec, SpecVersion: 1}
	s.st.Update(func(tx *store.Tx) error {
		if tx.ServiceByName(spec.Name) != nil {
			return errorf(ErrConflict, store.ErrNameConflict, "service name %q is already in use", spec.Name)
		}
		if err := resolveReferences(tx, spec); err != nil {
			return err
		}
		if err := checkPorts(tx, spec, ""); err != nil {
			return err
		}
		return tx.Create(svc)
	}, func(err error) {
		if err != nil {
			done(nil, storeError(fmt.Sprintf("create service %q", spec.Name), err))
			return
		}
		done(s.stored(svc), nil)
	})
}

// stored returns the stored version of a service just written, or what
// was written if it is gone already.
func (s *Server) stored(svc *api.Service) *api.Service {
	if cur := s.st.Service(svc.Id); cur != nil {
		return cur
	}
	return svc
}

// UpdateService replaces a service's spec. version is the service's
// meta.version as the caller read it: if the service changed since, the
// update is refused (optimistic concurrency).
//
// When the spec changes, the old one becomes previous_spec (what
// RollbackService returns to). When the change reaches the tasks (their
// template or the published ports), spec_version increases, and the
// update status is cleared so that the orchestrator starts a rolling
// update; a change of force_update counts. A change that only touches the
// service itself (replicas, labels, update policy) keeps spec_version, so
// no task is replaced for it. Any change of a job increases spec_version:
// updating a job runs it again, and the orchestrator, which owns
// job_status, starts a new iteration when it sees the new spec_version.
// An unchanged spec writes nothing.
func (s *Server) UpdateService(ref string, version uint64, spec *api.ServiceSpec, done func(*api.Service, error)) {
	if err := api.ValidateServiceSpec(spec); err != nil {
		done(nil, invalidSpec("service", err))
		return
	}
	spec = proto.Clone(spec).(*api.ServiceSpec)
	var result *api.Service
	s.st.Update(func(tx *store.Tx) error {
		cur, err := lookupService(tx, ref)
		if err != nil {
			return err
		}
		if v := cur.GetMeta().GetVersion(); v != version {
			return outOfSequence("service", cur.Spec.GetName(), v, version)
		}
		if spec.Name != cur.Spec.GetName() {
			return errorf(ErrInvalidArgument, nil, "renaming a service is not supported (%q to %q)", cur.Spec.GetName(), spec.Name)
		}
		if a, b := modeName(cur.Spec), modeName(spec); a != b {
			return errorf(ErrInvalidArgument, nil, "service %q is %s; changing a service's mode (to %s) is not supported", spec.Name, a, b)
		}
		if err := resolveReferences(tx, spec); err != nil {
			return err
		}
		if err := checkPorts(tx, spec, cur.Id); err != nil {
			return err
		}
		result = cur
		if proto.Equal(cur.Spec, spec) {
			return nil
		}
		c := cur.ShallowCopy()
		c.Spec = spec
		c.PreviousSpec = cur.Spec
		c.PreviousSpecVersion = cur.SpecVersion
		if reachesTasks(cur.Spec, spec) || isJob(spec) {
			c.SpecVersion = cur.SpecVersion + 1
			c.UpdateStatus = nil
		}
		result = c
		return tx.Update(c)
	}, func(err error) {
		if err != nil {
			done(nil, storeError(fmt.Sprintf("update service %q", ref), err))
			return
		}
		done(s.stored(result), nil)
	})
}

// ScaleService sets a replicated service's replica count. It names no
// version: it applies to the service as it is. Scaling is not a spec
// change in the rolling-update sense: previous_spec, spec_version and the
// update status stay, so a rollback after a scale still undoes the last
// update, and no task is replaced.
func (s *Server) ScaleService(ref string, replicas uint64, done func(*api.Service, error)) {
	if replicas > api.MaxReplicas {
		done(nil, errorf(ErrInvalidArgument, nil, "%d replicas is more than the %d allowed", replicas, api.MaxReplicas))
		return
	}
	var result *api.Service
	s.update(func(tx *store.Tx) error {
		cur, err := lookupService(tx, ref)
		if err != nil {
			return err
		}
		if cur.Spec.GetReplicated() == nil {
			return errorf(ErrFailedPrecondition, nil, "service %q is %s: only replicated services scale", cur.Spec.GetName(), modeName(cur.Spec))
		}
		result = cur
		if cur.Spec.GetReplicated().GetReplicas() == replicas {
			return nil
		}
		spec := proto.Clone(cur.Spec).(*api.ServiceSpec)
		spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}}
		c := cur.ShallowCopy()
		c.Spec = spec
		result = c
		return tx.Update(c)
	}, func(err error) {
		if err != nil {
			done(nil, storeError(fmt.Sprintf("scale service %q", ref), err))
			return
		}
		done(s.stored(result), nil)
	})
}

// RollbackService swaps a service's spec and previous_spec, and sets its
// update status to ROLLBACK_STARTED so that the orchestrator rolls the
// tasks back under the rollback policy. spec_version increases when the
// swap reaches the tasks (versions only grow). A second rollback undoes
// the first.
func (s *Server) RollbackService(ref string, done func(*api.Service, error)) {
	var result *api.Service
	s.update(func(tx *store.Tx) error {
		cur, err := lookupService(tx, ref)
		if err != nil {
			return err
		}
		name := cur.Spec.GetName()
		if cur.PreviousSpec == nil {
			return errorf(ErrFailedPrecondition, nil, "service %q has no previous spec to roll back to", name)
		}
		if isJob(cur.Spec) {
			return errorf(ErrFailedPrecondition, nil, "service %q is a job: jobs are not rolled back; update it instead", name)
		}
		if err := checkReferencesExist(tx, cur.PreviousSpec); err != nil {
			return errorf(ErrFailedPrecondition, err, "service %q cannot roll back: %v", name, err)
		}
		if err := checkPorts(tx, cur.PreviousSpec, cur.Id); err != nil {
			return errorf(ErrFailedPrecondition, err, "service %q cannot roll back: %v", name, err)
		}
		c := cur.ShallowCopy()
		c.Spec, c.PreviousSpec = cur.PreviousSpec, cur.Spec
		c.PreviousSpecVersion = cur.SpecVersion
		if reachesTasks(cur.Spec, cur.PreviousSpec) {
			c.SpecVersion = cur.SpecVersion + 1
		}
		c.UpdateStatus = &api.UpdateStatus{
			State:     api.UpdateStatus_ROLLBACK_STARTED,
			StartedAt: tx.Timestamp(),
			Message:   "manually requested rollback",
		}
		result = c
		return tx.Update(c)
	}, func(err error) {
		if err != nil {
			done(nil, storeError(fmt.Sprintf("roll back service %q", ref), err))
			return
		}
		done(s.stored(result), nil)
	})
}

// RemoveService deletes a service. Its tasks stay until the orchestrator,
// seeing the deletion, shuts them down and removes them.
func (s *Server) RemoveService(ref string, done func(error)) {
	s.update(func(tx *store.Tx) error {
		cur, err := lookupService(tx, ref)
		if err != nil {
			return err
		}
		return tx.Delete(store.KindService, cur.Id, 0)
	}, func(err error) {
		done(storeError(fmt.Sprintf("remove service %q", ref), err))
	})
}

// GetService returns a service by ID or name, from the local store.
func (s *Server) GetService(ref string) (*api.Service, error) {
	return lookupService(s.st, ref)
}

// ListServices returns the services f selects, in ID order, from the local
// store.
func (s *Server) ListServices(f ServiceFilter) []*api.Service {
	var out []*api.Service
	for svc := range s.st.EachService() {
		if strings.HasPrefix(svc.Spec.GetName(), f.NamePrefix) && matchLabels(svc.Spec.GetLabels(), f.Labels) {
			out = append(out, svc)
		}
	}
	return out
}

// ------------------------------------------------------------- helpers

func isJob(spec *api.ServiceSpec) bool {
	return spec.GetReplicatedJob() != nil || spec.GetGlobalJob() != nil
}

func modeName(spec *api.ServiceSpec) string {
	switch spec.GetMode().(type) {
	case *api.ServiceSpec_Replicated:
		return "replicated"
	case *api.ServiceSpec_Global:
		return "global"
	case *api.ServiceSpec_ReplicatedJob:
		return "a replicated job"
	case *api.ServiceSpec_GlobalJob:
		return "a global job"
	}
	return "without a mode"
}

// reachesTasks reports whether going from spec a to b changes what tasks
// are made of: their template, or the ports their endpoint publishes.
func reachesTasks(a, b *api.ServiceSpec) bool {
	return !proto.Equal(a.GetTask(), b.GetTask()) || !proto.Equal(a.GetEndpoint(), b.GetEndpoint())
}

// resolveReferences makes every secret, config and network reference of
// spec name an existing object by ID, filling in names (and a secret's or
// config's default target, its name). A reference giving both must agree.
func resolveReferences(r store.Reader, spec *api.ServiceSpec) error {
	c := spec.GetTask().GetContainer()
	for i, ref := range c.GetSecrets() {
		field := fmt.Sprintf("spec.task.container.secrets[%d]", i)
		x, err := resolveOne(field, "secret", ref.SecretId, ref.SecretName,
			func(id string) (string, bool) {
				if o := r.Secret(id); o != nil {
					return o.Spec.GetName(), true
				}
				return "", false
			},
			func(name string) (string, bool) {
				if o := r.SecretByName(name); o != nil {
					return o.Id, true
				}
				return "", false
			})
		if err != nil {
			return err
		}
		target := ref.Target
		if target == "" {
			target = x.name
		}
		c.Secrets[i] = &api.SecretReference{SecretId: x.id, SecretName: x.name, Target: target}
	}
	if err := uniqueTargets("secrets", len(c.GetSecrets()), func(i int) string { return c.Secrets[i].Target }); err != nil {
		return err
	}
	for i, ref := range c.GetConfigs() {
		field := fmt.Sprintf("spec.task.container.configs[%d]", i)
		x, err := resolveOne(field, "config", ref.ConfigId, ref.ConfigName,
			func(id string) (string, bool) {
				if o := r.Config(id); o != nil {
					return o.Spec.GetName(), true
				}
				return "", false
			},
			func(name string) (string, bool) {
				if o := r.ConfigByName(name); o != nil {
					return o.Id, true
				}
				return "", false
			})
		if err != nil {
			return err
		}
		target := ref.Target
		if target == "" {
			target = x.name
		}
		c.Configs[i] = &api.ConfigReference{ConfigId: x.id, ConfigName: x.name, Target: target}
	}
	if err := uniqueTargets("configs", len(c.GetConfigs()), func(i int) string { return c.Configs[i].Target }); err != nil {
		return err
	}
	if t := spec.GetTask(); t != nil {
		seen := map[string]int{}
		for i, ref := range t.Networks {
			n, err := lookupNetwork(r, ref)
			if err != nil {
				return errorf(ErrInvalidArgument, err, "spec.task.networks[%d]: network %q not found", i, ref)
			}
			if j, dup := seen[n.Id]; dup {
				return errorf(ErrInvalidArgument, nil, "spec.task.networks[%d]: network %q is already listed at networks[%d]", i, ref, j)
			}
			seen[n.Id] = i
			t.Networks[i] = n.Id
		}
	}
	return nil
}

// uniqueTargets checks, once names are known, that no two references
// share a target file (validation could not tell for references by ID
// whose target defaults to the name).
func uniqueTargets(kind string, n int, target func(int) string) error {
	seen := make(map[string]int, n)
	for i := 0; i < n; i++ {
		t := target(i)
		if j, dup := seen[t]; dup {
			return errorf(ErrInvalidArgument, nil, "spec.task.container.%s[%d].target: %q is already the target of %s[%d]", kind, i, t, kind, j)
		}
		seen[t] = i
	}
	return nil
}

type resolved struct{ id, name string }

func resolveOne(field, kind, id, name string, byID, byName func(string) (string, bool)) (resolved, error) {
	if id != "" {
		stored, ok := byID(id)
		if !ok {
			return resolved{}, errorf(ErrInvalidArgument, nil, "%s: %s ID %q not found", field, kind, id)
		}
		if name != "" && name != stored {
			return resolved{}, errorf(ErrInvalidArgument, nil, "%s: %s %s is named %q, not %q", field, kind, id, stored, name)
		}
		return resolved{id, stored}, nil
	}
	got, ok := byName(name)
	if !ok {
		return resolved{}, errorf(ErrInvalidArgument, nil, "%s: %s %q not found", field, kind, name)
	}
	return resolved{got, name}, nil
}

// checkReferencesExist checks that a stored spec's references (IDs) still
// name existing objects: a rollback must not bring back a removed secret.
func checkReferencesExist(r store.Reader, spec *api.ServiceSpec) error {
	c := spec.GetTask().GetContainer()
	for _, ref := range c.GetSecrets() {
		if r.Secret(ref.SecretId) == nil {
			return fmt.Errorf("secret %q no longer exists", ref.SecretName)
		}
	}
	for _, ref := range c.GetConfigs() {
		if r.Config(ref.ConfigId) == nil {
			return fmt.Errorf("config %q no longer exists", ref.ConfigName)
		}
	}
	for _, id := range spec.GetTask().GetNetworks() {
		if r.Network(id) == nil {
			return fmt.Errorf("network %s no longer exists", id)
		}
	}
	return nil
}

// checkPorts refuses published ports another service holds. An ingress
// port is published on every node, so it collides with any other use of
// the number; two host-mode ports may coexist on different nodes, which is
// the scheduler's business. The other services' specs and allocated
// endpoints both count.
func checkPorts(r store.Reader, spec *api.ServiceSpec, selfID string) error {
	type key struct {
		port  uint32
		proto api.PortConfig_Protocol
	}
	want := map[key]api.PortConfig_PublishMode{}
	for _, p := range spec.GetEndpoint().GetPorts() {
		if p.PublishedPort != 0 {
			want[key{p.PublishedPort, p.Protocol}] = p.PublishMode
		}
	}
	if len(want) == 0 {
		return nil
	}
	for _, other := range r.Services() {
		if other.Id == selfID {
			continue
		}
		for _, ports := range [][]*api.PortConfig{other.Spec.GetEndpoint().GetPorts(), other.GetEndpoint().GetPorts()} {
			for _, p := range ports {
				if p.PublishedPort == 0 {
					continue
				}
				mode, ok := want[key{p.PublishedPort, p.Protocol}]
				if !ok || mode == api.PortConfig_HOST && p.PublishMode == api.PortConfig_HOST {
					continue
				}
				return errorf(ErrConflict, nil, "published port %s is already in use by service %q",
					api.PortString(p.PublishedPort, p.Protocol), other.Spec.GetName())
			}
		}
	}
	return nil
}
