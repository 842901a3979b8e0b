package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// WorkloadPath is where the workload binary sits in every image built
// here; the default health check runs it.
const WorkloadPath = "/workload"

// LabelWorkloadImage marks the images built here, so that they can be told
// apart from anything else on the daemon.
const LabelWorkloadImage = "swarmsim.workload"

// EnvWorkloadBinary names a prebuilt static workload binary to use instead
// of building one with the go command (for machines without the source).
const EnvWorkloadBinary = "SWARMSIM_WORKLOAD_BINARY"

// Behaviour is what a workload container does, baked into its image as
// environment (the WORKLOAD_* variables cmd/workload reads). The zero value
// runs until SIGTERM and exits 0. A scenario's executor settings map onto
// it: fail_images are FailAtStart, unhealthy_images are Unhealthy, and
// exits {after: A..B, code: C} are ExitAfter A, ExitAfterMax B, ExitCode C.
type Behaviour struct {
	// FailAtStart makes the container exit 1 as soon as it starts.
	FailAtStart bool
	// ExitAfter makes the container exit on its own, with ExitCode; when
	// ExitAfterMax is above it, after a random time in [ExitAfter,
	// ExitAfterMax].
	ExitAfter, ExitAfterMax time.Duration
	ExitCode                int
	// Unhealthy makes every health check fail; UnhealthyAfter makes them
	// fail from that long after start.
	Unhealthy      bool
	UnhealthyAfter time.Duration
	// IgnoreTerm makes the container ignore SIGTERM, so only a kill after
	// the stop grace ends it.
	IgnoreTerm bool
}

// Env returns the behaviour as WORKLOAD_* variables, in a stable order.
// Only settings that differ from the zero value appear.
func (b Behaviour) Env() []string {
	var env []string
	if b.FailAtStart {
		env = append(env, "WORKLOAD_FAIL_AT_START=true")
	}
	if b.ExitAfter > 0 {
		env = append(env, "WORKLOAD_EXIT_AFTER="+b.ExitAfter.String())
	}
	if b.ExitAfterMax > 0 {
		env = append(env, "WORKLOAD_EXIT_AFTER_MAX="+b.ExitAfterMax.String())
	}
	if b.ExitCode != 0 {
		env = append(env, "WORKLOAD_EXIT_CODE="+strconv.Itoa(b.ExitCode))
	}
	if b.Unhealthy {
		env = append(env, "WORKLOAD_UNHEALTHY=true")
	}
	if b.UnhealthyAfter > 0 {
		env = append(env, "WORKLOAD_UNHEALTHY_AFTER="+b.UnhealthyAfter.String())
	}
	if b.IgnoreTerm {
		env = append(env, "WORKLOAD_IGNORE_TERM=true")
	}
	return env
}

// ImageBuilder is the part of the Docker API that building images needs;
// *client.Client satisfies it.
type ImageBuilder interface {
	ImageBuild(ctx context.Context, buildContext io.Reader, options client.ImageBuildOptions) (client.ImageBuildResult, error)
}

// BuildWorkloadImage builds an image FROM scratch holding the workload
// binary (see WorkloadBinary) with behaviour b, and tags it tag ("web:1").
// It needs no registry.
func BuildWorkloadImage(ctx context.Context, cli ImageBuilder, tag string, b Behaviour) error {
	bin, err := WorkloadBinary(ctx)
	if err != nil {
		return err
	}
	return BuildImage(ctx, cli, tag, bin, b)
}

// BuildImage builds an image FROM scratch holding the given static
// workload binary with behaviour b, and tags it tag. The build context is
// an in-memory tar; the classic builder is asked for explicitly, since
// BuildKit over the API needs a session this client does not open.
func BuildImage(ctx context.Context, cli ImageBuilder, tag string, binary []byte, b Behaviour) error {
	return BuildBinaryImage(ctx, cli, BinaryImage{
		Tag: tag, Path: WorkloadPath, Binary: binary, Env: b.Env(),
		Labels: map[string]string{LabelWorkloadImage: "true"},
	})
}

// BinaryImage is an image FROM scratch that holds one static binary, its
// entrypoint.
type BinaryImage struct {
	Tag    string // "web:1"
	Path   string // where the binary sits, e.g. /workload
	Binary []byte
	Env    []string          // KEY=VALUE, baked in with ENV
	Labels map[string]string // image labels, e.g. to find it again for cleanup
}

// BuildBinaryImage builds im FROM scratch and tags it. It needs no
// registry.
func BuildBinaryImage(ctx context.Context, cli ImageBuilder, im BinaryImage) error {
	tag := im.Tag
	if tag == "" {
		return errors.New("build image: empty tag")
	}
	if len(im.Binary) == 0 {
		return fmt.Errorf("build image %q: empty binary", tag)
	}
	buildCtx, err := binaryContext(im)
	if err != nil {
		return fmt.Errorf("build image %q: %w", tag, err)
	}
	res, err := cli.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags: []string{tag},
		// No cache: images of one binary share their COPY layer, and a
		// cached layer can vanish mid-build when another image that held
		// it is removed ("failed to get digest"). The build is a copy of
		// a few MB; caching saves nothing worth that race.
		NoCache:     true,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		Labels:      im.Labels,
	})
	if err != nil {
		return fmt.Errorf("build image %q: %w", tag, err)
	}
	defer res.Body.Close()
	if err := readBuildStream(res.Body); err != nil {
		return fmt.Errorf("build image %q: %w", tag, err)
	}
	return nil
}

// binaryContext is the build context: a Dockerfile and the binary.
func binaryContext(im BinaryImage) (io.Reader, error) {
	var df strings.Builder
	df.WriteString("FROM scratch\n")
	df.WriteString("COPY binary " + im.Path + "\n")
	for _, kv := range im.Env {
		k, v, _ := strings.Cut(kv, "=")
		// JSON quoting keeps durations like "1m0s" one token.
		q, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&df, "ENV %s=%s\n", k, q)
	}
	df.WriteString(`ENTRYPOINT ["` + im.Path + `"]` + "\n")

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed time keeps the context stable.
	mtime := time.Unix(0, 0)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte(df.String())},
		{"binary", 0o755, im.Binary},
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// readBuildStream drains a build's JSON message stream and returns the
// first error it reports, with the last lines of output for context.
func readBuildStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading build output: %w", err)
		}
		if m.Error != nil {
			msg := m.Error.Message
			if len(tail) > 0 {
				msg += " (after: " + strings.Join(tail, " | ") + ")"
			}
			return errors.New(msg)
		}
		if line := strings.TrimSpace(m.Stream); line != "" {
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
	}
}

// EnvSwarmdBinary names a prebuilt static swarmd binary to use instead of
// building one with the go command.
const EnvSwarmdBinary = "SWARMSIM_SWARMD_BINARY"

// binaries keeps each static build for the life of the process.
var binaries struct {
	mu  sync.Mutex
	bin map[string][]byte
}

// WorkloadBinary returns a static linux build of cmd/workload for the
// machine's architecture. It reads the file named by
// $SWARMSIM_WORKLOAD_BINARY when that is set; otherwise it runs
// `go build` (CGO_ENABLED=0) in the swarmsim module, which must contain the
// working directory. The result is kept for the life of the process.
func WorkloadBinary(ctx context.Context) ([]byte, error) {
	return StaticBinary(ctx, "github.com/swarmsim/swarmsim/cmd/workload", EnvWorkloadBinary)
}

// SwarmdBinary is WorkloadBinary for cmd/swarmd ($SWARMSIM_SWARMD_BINARY),
// which real-mode clusters run FROM scratch.
func SwarmdBinary(ctx context.Context) ([]byte, error) {
	return StaticBinary(ctx, "github.com/swarmsim/swarmsim/cmd/swarmd", EnvSwarmdBinary)
}

// StaticBinary returns a static linux build of the package pkg: the file
// $envVar names when set, else `go build` with CGO_ENABLED=0 in the
// module that holds the working directory. Builds are kept per package.
func StaticBinary(ctx context.Context, pkg, envVar string) ([]byte, error) {
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if b := binaries.bin[pkg]; b != nil {
		return b, nil
	}
	var bin []byte
	var err error
	if path := os.Getenv(envVar); path != "" {
		bin, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s binary from $%s: %w", pkg, envVar, err)
		}
	} else {
		bin, err = goBuildStatic(ctx, pkg, envVar)
		if err != nil {
			return nil, err
		}
	}
	if binaries.bin == nil {
		binaries.bin = map[string][]byte{}
	}
	binaries.bin[pkg] = bin
	return bin, nil
}

func goBuildStatic(ctx context.Context, pkg, envVar string) ([]byte, error) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("build %s: no go command (set $%s to a prebuilt binary): %w", pkg, envVar, err)
	}
	dir, err := os.MkdirTemp("", "swarmsim-build-")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", pkg, err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, path.Base(pkg))
	cmd := exec.CommandContext(ctx, gocmd, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, pkg)
	// The daemon runs linux containers; a docker on a mac runs them in a
	// VM of the host's architecture, so GOARCH stays the host's.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s (go build must run inside the swarmsim module, or set $%s): %w: %s",
			pkg, envVar, err, bytes.TrimSpace(msg))
	}
	return os.ReadFile(out)
}
