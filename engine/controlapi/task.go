package controlapi

import (
	"slices"

	"github.com/swarmsim/swarmsim/engine/api"
)

// TaskFilter selects tasks in ListTasks; zero fields select all.
type TaskFilter struct {
	// Service is a service ID or name.
	Service string
	// Node is a node ID or name.
	Node string
	// DesiredStates, when not empty, lists the desired states wanted.
	DesiredStates []api.TaskState
}

// GetTask returns a task by ID, from the local store.
func (s *Server) GetTask(id string) (*api.Task, error) {
	if id == "" {
		return nil, errorf(ErrInvalidArgument, nil, "a task ID is required")
	}
	t := s.st.Task(id)
	if t == nil {
		return nil, notFound("task", id)
	}
	return t, nil
}

// ListTasks returns the tasks f selects, in ID order, from the local
// store. It fails when f names a service or node that does not exist.
func (s *Server) ListTasks(f TaskFilter) ([]*api.Task, error) {
	var serviceID, nodeID string
	if f.Service != "" {
		svc, err := lookupService(s.st, f.Service)
		if err != nil {
			return nil, err
		}
		serviceID = svc.Id
	}
	if f.Node != "" {
		n, err := lookupNode(s.st, f.Node)
		if err != nil {
			return nil, err
		}
		nodeID = n.Id
	}
	var candidates []*api.Task
	switch {
	case serviceID != "":
		candidates = s.st.TasksByService(serviceID)
	case nodeID != "":
		candidates = s.st.TasksByNode(nodeID)
	default:
		candidates = s.st.Tasks()
	}
	out := candidates[:0]
	for _, t := range candidates {
		if nodeID != "" && t.NodeId != nodeID {
			continue
		}
		if len(f.DesiredStates) > 0 && !slices.Contains(f.DesiredStates, t.DesiredState) {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}
