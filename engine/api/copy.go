package api

// Shallow copies for writers that change a few fields of a stored object.
//
// Objects handed out by the store are immutable, so a writer that wants to
// change a task's status does not deep-clone the task (proto.Clone walks the
// whole spec): it takes a ShallowCopy, which shares every sub-message, slice
// and map with the original, and then replaces whole fields
// (copy.Status = &TaskStatus{...}). It must never write through a shared
// pointer (copy.Status.State = ...), since that changes the stored original.
//
// Protobuf structs carry internal state and must not be copied by value
// (go vet's copylocks check), hence these constructors. They copy every
// field, unknown fields included, and leave the internal state fresh;
// copy_test.go fails when a field is added to a message and not here.

// ShallowCopy returns a new Task whose fields are those of x; sub-messages,
// slices and maps are shared. It returns nil for nil.
func (x *Task) ShallowCopy() *Task {
	if x == nil {
		return nil
	}
	return x.ShallowCopyInto(new(Task))
}

// ShallowCopyInto overwrites every field of dst with those of x (non-nil)
// and returns dst. It lets a caller allocate the task together with other
// data (the store allocates a task, its meta and its status in one block),
// or reuse one scratch Task (to marshal variants of many tasks). dst must
// not be shared with anyone who expects it unchanged.
func (x *Task) ShallowCopyInto(dst *Task) *Task {
	dst.Id = x.Id
	dst.Meta = x.Meta
	dst.ServiceId = x.ServiceId
	dst.Slot = x.Slot
	dst.NodeId = x.NodeId
	dst.Spec = x.Spec
	dst.SpecVersion = x.SpecVersion
	dst.DesiredState = x.DesiredState
	dst.Status = x.Status
	dst.Networks = x.Networks
	dst.Endpoint = x.Endpoint
	dst.JobIteration = x.JobIteration
	dst.PendingReason = x.PendingReason
	dst.ServiceName = x.ServiceName
	dst.unknownFields = x.unknownFields
	return dst
}

// ShallowCopy returns a new Node whose fields are those of x; sub-messages,
// slices and maps are shared. It returns nil for nil.
func (x *Node) ShallowCopy() *Node {
	if x == nil {
		return nil
	}
	return &Node{
		Id:            x.Id,
		Meta:          x.Meta,
		Spec:          x.Spec,
		Description:   x.Description,
		Status:        x.Status,
		Role:          x.Role,
		ManagerStatus: x.ManagerStatus,
		Certificate:   x.Certificate,
		Removed:       x.Removed,
		unknownFields: x.unknownFields,
	}
}

// ShallowCopy returns a new Service whose fields are those of x;
// sub-messages, slices and maps are shared. It returns nil for nil.
func (x *Service) ShallowCopy() *Service {
	if x == nil {
		return nil
	}
	return &Service{
		Id:                  x.Id,
		Meta:                x.Meta,
		Spec:                x.Spec,
		SpecVersion:         x.SpecVersion,
		PreviousSpec:        x.PreviousSpec,
		PreviousSpecVersion: x.PreviousSpecVersion,
		UpdateStatus:        x.UpdateStatus,
		Endpoint:            x.Endpoint,
		JobStatus:           x.JobStatus,
		PendingDelete:       x.PendingDelete,
		unknownFields:       x.unknownFields,
	}
}

// ShallowCopy returns a new Cluster whose fields are those of x;
// sub-messages and byte slices are shared. It returns nil for nil.
func (x *Cluster) ShallowCopy() *Cluster {
	if x == nil {
		return nil
	}
	return &Cluster{
		Id:                   x.Id,
		Meta:                 x.Meta,
		Spec:                 x.Spec,
		RootCa:               x.RootCa,
		JoinTokens:           x.JoinTokens,
		UnlockKey:            x.UnlockKey,
		EncryptionKeyLamport: x.EncryptionKeyLamport,
		unknownFields:        x.unknownFields,
	}
}

// ShallowCopy returns a new TaskStatus whose fields are those of x. It
// returns nil for nil.
func (x *TaskStatus) ShallowCopy() *TaskStatus {
	if x == nil {
		return nil
	}
	return &TaskStatus{
		State:         x.State,
		Timestamp:     x.Timestamp,
		Message:       x.Message,
		Err:           x.Err,
		ExitCode:      x.ExitCode,
		Unhealthy:     x.Unhealthy,
		unknownFields: x.unknownFields,
	}
}

// ShallowCopy returns a new NodeStatus whose fields are those of x. It
// returns nil for nil.
func (x *NodeStatus) ShallowCopy() *NodeStatus {
	if x == nil {
		return nil
	}
	return &NodeStatus{
		State:         x.State,
		Message:       x.Message,
		Addr:          x.Addr,
		Timestamp:     x.Timestamp,
		unknownFields: x.unknownFields,
	}
}
