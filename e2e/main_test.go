package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmsim/swarmsim/realnet/docker"
	"github.com/swarmsim/swarmsim/realnet/realcluster"
	"github.com/swarmsim/swarmsim/scenarios"
)

// scenarioFiles are the files TestScenarioFiles runs with --real.
var scenarioFiles = []string{
	"../scenarios/service-lifecycle.yaml",
	"../scenarios/real-worker-loss.yaml",
	"../scenarios/real-leader-isolated.yaml",
	"../scenarios/real-partition.yaml",
	"../scenarios/real-membership.yaml",
	"../scenarios/security-join-rotated-token.yaml",
	"../scenarios/security-root-rotation-partition.yaml",
	"../scenarios/autolock-restart-all-managers.yaml",
	"../scenarios/security-compromised-worker.yaml",
	"../scenarios/security-removed-node.yaml",
	"../scenarios/real-clock-skew.yaml",
	"../scenarios/real-autolock-from-init.yaml",
	"../scenarios/real-link-faults.yaml",
	"../scenarios/lossy-network.yaml",
}

// The package's shared state, set by TestMain.
var (
	noDocker error               // why the tests skip
	cli      *client.Client      // the local Docker
	images   *realcluster.Images // every image the tests run
	parsed   []*scenarios.Scenario
)

// Workload images of TestCluster, in the shared image set.
var webV1, webV2 string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	realcluster.DisableRyuk()
	realcluster.Quiet()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c, err := docker.Connect(ctx)
	cancel()
	if err != nil {
		noDocker = err
		return m.Run()
	}
	cli = c
	defer cli.Close()
	for _, f := range scenarioFiles {
		sc, err := scenarios.ParseFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		parsed = append(parsed, sc)
	}
	imageRun := "e2e" + realcluster.NewRunID()
	images = scenarios.RealImagesFor(imageRun, parsed...)
	webV1, webV2 = scenarios.RealImage(imageRun, "e2e-web:1"), scenarios.RealImage(imageRun, "e2e-web:2")
	images.Workloads[webV1] = docker.Behaviour{}
	images.Workloads[webV2] = docker.Behaviour{}
	bctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	err = images.Build(bctx, cli)
	cancel()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := realcluster.RemoveImages(ctx, cli, imageRun); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: removing the images:", err)
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the images:", err)
		return 1
	}
	return m.Run()
}

// needDocker skips t, in one line, when no Docker daemon answered.
func needDocker(t *testing.T) {
	t.Helper()
	if noDocker != nil {
		t.Skipf("no Docker daemon: %v", noDocker)
	}
}
