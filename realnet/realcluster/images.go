package realcluster

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/moby/moby/client"

	"github.com/swarmsim/swarmsim/realnet/docker"
)

// LabelRun marks every container, network and image a run creates, with
// the run's ID as value.
const LabelRun = "swarmsim.realcluster.run"

// Images are the images one run (or one test package) builds: the swarmd
// image and one workload image per tag.
type Images struct {
	// Run labels them (LabelRun).
	Run string
	// Swarmd is the swarmd image's tag.
	Swarmd string
	// Workloads are the workload images' tags and their behaviours.
	Workloads map[string]docker.Behaviour
}

// Build builds every image into the local Docker, FROM scratch: no
// registry is needed.
func (im Images) Build(ctx context.Context, cli *client.Client) error {
	labels := map[string]string{LabelRun: im.Run}
	trackImages(im.Run, cli, true)
	bin, err := docker.SwarmdBinary(ctx)
	if err != nil {
		return err
	}
	if err := docker.BuildBinaryImage(ctx, cli, docker.BinaryImage{
		Tag: im.Swarmd, Path: "/swarmd", Binary: bin, Labels: labels,
	}); err != nil {
		return err
	}
	wl, err := docker.WorkloadBinary(ctx)
	if err != nil {
		return err
	}
	for _, tag := range slices.Sorted(maps.Keys(im.Workloads)) {
		l := maps.Clone(labels)
		l[docker.LabelWorkloadImage] = "true"
		if err := docker.BuildBinaryImage(ctx, cli, docker.BinaryImage{
			Tag: tag, Path: docker.WorkloadPath, Binary: wl, Env: im.Workloads[tag].Env(), Labels: l,
		}); err != nil {
			return err
		}
	}
	return nil
}

// RemoveImages removes every image labelled with run.
func RemoveImages(ctx context.Context, cli *client.Client, run string) error {
	trackImages(run, nil, false)
	res, err := cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", LabelRun+"="+run)})
	if err != nil {
		return fmt.Errorf("listing run %s's images: %w", run, err)
	}
	var first error
	for _, img := range res.Items {
		if _, err := cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && first == nil {
			first = fmt.Errorf("removing image %s: %w", img.ID, err)
		}
	}
	return first
}
