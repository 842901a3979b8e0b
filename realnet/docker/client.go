package docker

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"
)

// Connect returns a client for the daemon the environment names
// (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH; the local socket by
// default) once a ping has answered and fixed the API version.
//
// The client speaks API versions client.MinAPIVersion (1.40) to
// client.MaxAPIVersion (1.56) and, unless DOCKER_API_VERSION pins one,
// negotiates: it takes the lower of its maximum and the version the daemon
// announces. Docker Engine 20.10 announces 1.41, so every call then goes
// out as /v1.41/...; nothing this package sends needs more. Negotiating
// here, rather than lazily on the first call, turns a daemon older than
// 1.40 into one clear error instead of a failure of whatever call came
// first. The caller closes the client.
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ping, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		cli.Close()
		if ping.APIVersion != "" {
			return nil, fmt.Errorf("docker: daemon at %s speaks API %s, this client needs %s..%s: %w",
				cli.DaemonHost(), ping.APIVersion, client.MinAPIVersion, client.MaxAPIVersion, err)
		}
		return nil, fmt.Errorf("docker: no daemon answered at %s: %w", cli.DaemonHost(), err)
	}
	return cli, nil
}
