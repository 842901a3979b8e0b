package controlapi

import (
	"fmt"
	"strings"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Secrets and configs are created and removed, never updated: a service
// that needs new content references a new object (as in SwarmKit, whose
// update of either only changes labels, which ours do not have).
//
// A secret's data goes into the store and to the tasks that use it, and
// nowhere else: every secret this package returns is metadata only.

// secretMeta is a secret without its data.
func secretMeta(x *api.Secret) *api.Secret {
	return &api.Secret{Id: x.Id, Meta: x.Meta, Spec: &api.SecretSpec{Name: x.GetSpec().GetName()}}
}

// CreateSecret creates a secret. done gets its metadata (no data).
func (s *Server) CreateSecret(spec *api.SecretSpec, done func(*api.Secret, error)) {
	if err := api.ValidateSecretSpec(spec); err != nil {
		done(nil, invalidSpec("secret", err))
		return
	}
	x := &api.Secret{Id: api.NewID(s.rand), Spec: &api.SecretSpec{Name: spec.Name, Data: append([]byte(nil), spec.Data...)}}
	s.st.Update(func(tx *store.Tx) error {
		if tx.SecretByName(spec.Name) != nil {
			return errorf(ErrConflict, store.ErrNameConflict, "secret name %q is already in use", spec.Name)
		}
		return tx.Create(x)
	}, func(err error) {
		if err != nil {
			done(nil, storeError(fmt.Sprintf("create secret %q", spec.Name), err))
			return
		}
		if cur := s.st.Secret(x.Id); cur != nil {
			x = cur
		}
		done(secretMeta(x), nil)
	})
}

// GetSecret returns a secret's metadata (never its data) by ID or name.
func (s *Server) GetSecret(ref string) (*api.Secret, error) {
	x, err := lookupSecret(s.st, ref)
	if err != nil {
		return nil, err
	}
	return secretMeta(x), nil
}

// ListSecrets returns the metadata (never the data) of the secrets whose
// name starts with namePrefix, in ID order.
func (s *Server) ListSecrets(namePrefix string) []*api.Secret {
	var out []*api.Secret
	for _, x := range s.st.Secrets() {
		if strings.HasPrefix(x.GetSpec().GetName(), namePrefix) {
			out = append(out, secretMeta(x))
		}
	}
	return out
}

// RemoveSecret removes a secret no service references (by its current or
// its previous spec, which a rollback would bring back).
func (s *Server) RemoveSecret(ref string, done func(error)) {
	s.update(func(tx *store.Tx) error {
		x, err := lookupSecret(tx, ref)
		if err != nil {
			return err
		}
		users := servicesUsing(tx, func(spec *api.ServiceSpec) bool {
			for _, r := range spec.GetTask().GetContainer().GetSecrets() {
				if r.SecretId == x.Id {
					return true
				}
			}
			return false
		})
		if len(users) > 0 {
			return errorf(ErrFailedPrecondition, nil, "secret %q is in use by service %s", x.Spec.GetName(), quoteNames(users))
		}
		return tx.Delete(store.KindSecret, x.Id, 0)
	}, func(err error) {
		done(storeError(fmt.Sprintf("remove secret %q", ref), err))
	})
}

// CreateConfig creates a config. done gets it as stored.
func (s *Server) CreateConfig(spec *api.ConfigSpec, done func(*api.Config, error)) {
	if err := api.ValidateConfigSpec(spec); err != nil {
		done(nil, invalidSpec("config", err))
		return
	}
	x := &api.Config{Id: api.NewID(s.rand), Spec: &api.ConfigSpec{Name: spec.Name, Data: append([]byte(nil), spec.Data...)}}
	s.st.Update(func(tx *store.Tx) error {
		if tx.ConfigByName(spec.Name) != nil {
			return errorf(ErrConflict, store.ErrNameConflict, "config name %q is already in use", spec.Name)
		}
		return tx.Create(x)
	}, func(err error) {
		if err != nil {
			done(nil, storeError(fmt.Sprintf("create config %q", spec.Name), err))
			return
		}
		if cur := s.st.Config(x.Id); cur != nil {
			x = cur
		}
		done(x, nil)
	})
}

// GetConfig returns a config by ID or name.
func (s *Server) GetConfig(ref string) (*api.Config, error) {
	return lookupConfig(s.st, ref)
}

// ListConfigs returns the configs whose name starts with namePrefix, in
// ID order.
func (s *Server) ListConfigs(namePrefix string) []*api.Config {
	var out []*api.Config
	for _, x := range s.st.Configs() {
		if strings.HasPrefix(x.GetSpec().GetName(), namePrefix) {
			out = append(out, x)
		}
	}
	return out
}

// RemoveConfig removes a config no service references.
func (s *Server) RemoveConfig(ref string, done func(error)) {
	s.update(func(tx *store.Tx) error {
		x, err := lookupConfig(tx, ref)
		if err != nil {
			return err
		}
		users := servicesUsing(tx, func(spec *api.ServiceSpec) bool {
			for _, r := range spec.GetTask().GetContainer().GetConfigs() {
				if r.ConfigId == x.Id {
					return true
				}
			}
			return false
		})
		if len(users) > 0 {
			return errorf(ErrFailedPrecondition, nil, "config %q is in use by service %s", x.Spec.GetName(), quoteNames(users))
		}
		return tx.Delete(store.KindConfig, x.Id, 0)
	}, func(err error) {
		done(storeError(fmt.Sprintf("remove config %q", ref), err))
	})
}

// servicesUsing names the services whose spec or previous spec uses, in
// ID order.
func servicesUsing(r store.Reader, uses func(*api.ServiceSpec) bool) []string {
	var names []string
	for _, svc := range r.Services() {
		if uses(svc.Spec) || svc.PreviousSpec != nil && uses(svc.PreviousSpec) {
			names = append(names, svc.Spec.GetName())
		}
	}
	return names
}
