package env

import "time"

// ContainerSpec is what an executor needs to run one task's container.
type ContainerSpec struct {
	TaskID    string
	ServiceID string
	Image     string
	Command   []string
	Env       []string
	// Labels tie the container to its task so a restarted node can find it.
	Labels      map[string]string
	NanoCPUs    int64 // CPU limit, in billionths of a CPU; 0 means none
	MemoryBytes int64 // memory limit; 0 means none
	Health      *HealthCheck
	// Files are mounted read-only into the container (secrets and configs),
	// keyed by target path. Executors never log their contents.
	Files map[string][]byte
}

// HealthCheck says how an executor probes a running container.
type HealthCheck struct {
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

// ContainerState is where a container is in its life.
type ContainerState uint8

const (
	ContainerUnknown  ContainerState = iota
	ContainerPrepared                // image present and container created
	ContainerRunning
	ContainerExited  // stopped or exited on its own; ExitCode says how
	ContainerRemoved // gone
	ContainerFailed  // could not be prepared or started; Err says why
)

func (s ContainerState) String() string {
	switch s {
	case ContainerPrepared:
		return "prepared"
	case ContainerRunning:
		return "running"
	case ContainerExited:
		return "exited"
	case ContainerRemoved:
		return "removed"
	case ContainerFailed:
		return "failed"
	default:
		return "unknown"
	}
}

// Health is a running container's last health verdict.
type Health uint8

const (
	HealthNone     Health = iota // no health check, or none finished yet
	HealthStarting               // inside the start period
	HealthHealthy
	HealthUnhealthy // failed Retries checks in a row
)

// ContainerEvent reports a change in a container.
type ContainerEvent struct {
	TaskID   string
	State    ContainerState
	ExitCode int
	Health   Health
	Err      string
}

// ContainerStatus is one container an executor knows about.
type ContainerStatus struct {
	TaskID   string
	State    ContainerState
	ExitCode int
	Health   Health
}

// Executor runs containers for a node's agent. Every call returns at once;
// results come back as ContainerEvents through the handler, on the node's
// loop. Implementations: the simulator's fake runtime and realnet's Docker
// executor.
type Executor interface {
	// SetEventHandler sets where container events go. It is called once,
	// before any other method.
	SetEventHandler(h func(ContainerEvent))
	// Prepare gets the image and creates the container: ContainerPrepared
	// on success, ContainerFailed with a reason otherwise.
	Prepare(spec ContainerSpec)
	// Start starts a prepared container: ContainerRunning, then
	// ContainerExited when it ends, or ContainerFailed if it cannot start.
	Start(taskID string)
	// Stop asks the container to stop and kills it after grace.
	Stop(taskID string, grace time.Duration)
	// Remove deletes a stopped container: ContainerRemoved.
	Remove(taskID string)
	// List reports the containers this node has, so an agent that restarts
	// can adopt the ones still running.
	List(done func([]ContainerStatus))
}
