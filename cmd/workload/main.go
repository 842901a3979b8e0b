// Command workload is the container every real-mode test task runs: a tiny
// static program (build it with CGO_ENABLED=0) that lives alone in a
// FROM scratch image, so no image ever has to come from a registry.
//
// What it does is set by flags, each of which defaults to an environment
// variable, so a behaviour can be baked into an image (ENV) or chosen per
// task (command or env):
//
//	-fail-at-start       WORKLOAD_FAIL_AT_START    exit 1 at once
//	-exit-after D        WORKLOAD_EXIT_AFTER       exit on its own after D (0: run until signalled)
//	-exit-after-max D    WORKLOAD_EXIT_AFTER_MAX   if set, exit after a random time in [exit-after, D]
//	-exit-code N         WORKLOAD_EXIT_CODE        the code to exit with after exit-after
//	-unhealthy           WORKLOAD_UNHEALTHY        fail every health check
//	-unhealthy-after D   WORKLOAD_UNHEALTHY_AFTER  start failing health checks after D
//	-ignore-term         WORKLOAD_IGNORE_TERM      ignore SIGTERM (so a stop must kill it)
//
// Without flags it runs until SIGTERM or SIGINT and exits 0.
//
// `workload health` is the probe Docker's HEALTHCHECK runs (exec form: a
// scratch image has no shell). It exits 0 when healthy and 1 when not. The
// probe is a separate process, so it learns the verdict from the container's
// environment (WORKLOAD_UNHEALTHY, inherited by every exec) or from a marker
// file the main process writes under WORKLOAD_STATE_DIR (default
// /run/workload) once it turns unhealthy.
//
// It never prints its environment: a task's env may carry secrets.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Environment variables that set the default of each flag. realnet/docker
// bakes them into images; the names are part of that contract.
const (
	envFailAtStart    = "WORKLOAD_FAIL_AT_START"
	envExitAfter      = "WORKLOAD_EXIT_AFTER"
	envExitAfterMax   = "WORKLOAD_EXIT_AFTER_MAX"
	envExitCode       = "WORKLOAD_EXIT_CODE"
	envUnhealthy      = "WORKLOAD_UNHEALTHY"
	envUnhealthyAfter = "WORKLOAD_UNHEALTHY_AFTER"
	envIgnoreTerm     = "WORKLOAD_IGNORE_TERM"
	envStateDir       = "WORKLOAD_STATE_DIR"

	defaultStateDir = "/run/workload"
	unhealthyMarker = "unhealthy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// config is what one run of the main process does.
type config struct {
	failAtStart    bool
	exitAfter      time.Duration
	exitAfterMax   time.Duration
	exitCode       int
	unhealthy      bool
	unhealthyAfter time.Duration
	ignoreTerm     bool
	stateDir       string
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "health" {
		return health(getenv, stdout)
	}
	cfg, err := parse(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "workload: %v\n", err)
		return 2
	}
	return serve(cfg, stdout)
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	var errs []error
	envBool := func(name string) bool {
		v := getenv(name)
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a boolean", name, v))
		}
		return b
	}
	envDuration := func(name string) time.Duration {
		v := getenv(name)
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a duration", name, v))
		}
		return d
	}
	envInt := func(name string) int {
		v := getenv(name)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not an integer", name, v))
		}
		return n
	}

	fs := flag.NewFlagSet("workload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.failAtStart, "fail-at-start", envBool(envFailAtStart), "exit 1 at once")
	fs.DurationVar(&cfg.exitAfter, "exit-after", envDuration(envExitAfter), "exit on its own after this long (0: run until signalled)")
	fs.DurationVar(&cfg.exitAfterMax, "exit-after-max", envDuration(envExitAfterMax), "if set, exit after a random time between exit-after and this")
	fs.IntVar(&cfg.exitCode, "exit-code", envInt(envExitCode), "exit code used after exit-after")
	fs.BoolVar(&cfg.unhealthy, "unhealthy", envBool(envUnhealthy), "fail every health check")
	fs.DurationVar(&cfg.unhealthyAfter, "unhealthy-after", envDuration(envUnhealthyAfter), "start failing health checks after this long")
	fs.BoolVar(&cfg.ignoreTerm, "ignore-term", envBool(envIgnoreTerm), "ignore SIGTERM, so that only a kill stops it")
	cfg.stateDir = getenv(envStateDir)
	if cfg.stateDir == "" {
		cfg.stateDir = defaultStateDir
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q (the only subcommand is \"health\")", fs.Args())
	}
	if cfg.exitAfter < 0 || cfg.exitAfterMax < 0 || cfg.unhealthyAfter < 0 {
		return cfg, errors.New("durations must not be negative")
	}
	if cfg.exitAfterMax != 0 && cfg.exitAfterMax < cfg.exitAfter {
		return cfg, fmt.Errorf("exit-after-max %v is below exit-after %v", cfg.exitAfterMax, cfg.exitAfter)
	}
	if cfg.exitCode < 0 || cfg.exitCode > 255 {
		return cfg, fmt.Errorf("exit-code %d is outside 0..255", cfg.exitCode)
	}
	return cfg, nil
}

// serve is the main process: it returns the exit code.
func serve(cfg config, stdout io.Writer) int {
	if cfg.failAtStart {
		fmt.Fprintln(stdout, "workload: failing at start, as configured")
		return 1
	}

	signals := make(chan os.Signal, 1)
	if cfg.ignoreTerm {
		// Until this line a TERM meets the Go runtime's own handler, which
		// exits (with code 2 as PID 1, where re-raising the signal does
		// nothing): a caller that must know TERM is ignored waits for the
		// "running" line below.
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(signals, syscall.SIGINT)
	} else {
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	}
	defer signal.Stop(signals)

	var exit <-chan time.Time
	if d := exitDelay(cfg); d > 0 {
		exit = time.After(d)
		fmt.Fprintf(stdout, "workload: running, will exit %d after %v\n", cfg.exitCode, d)
	} else {
		fmt.Fprintln(stdout, "workload: running until signalled")
	}

	if cfg.unhealthy {
		markUnhealthy(cfg.stateDir, stdout)
	}
	var sicken <-chan time.Time
	if !cfg.unhealthy && cfg.unhealthyAfter > 0 {
		sicken = time.After(cfg.unhealthyAfter)
	}

	for {
		select {
		case sig := <-signals:
			fmt.Fprintf(stdout, "workload: %v: exiting 0\n", sig)
			return 0
		case <-exit:
			fmt.Fprintf(stdout, "workload: exiting %d, as configured\n", cfg.exitCode)
			return cfg.exitCode
		case <-sicken:
			sicken = nil
			markUnhealthy(cfg.stateDir, stdout)
		}
	}
}

func exitDelay(cfg config) time.Duration {
	if cfg.exitAfterMax > cfg.exitAfter {
		return cfg.exitAfter + rand.N(cfg.exitAfterMax-cfg.exitAfter+1)
	}
	return cfg.exitAfter
}

func markUnhealthy(dir string, stdout io.Writer) {
	fmt.Fprintln(stdout, "workload: turning unhealthy, as configured")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stdout, "workload: cannot record unhealthiness: %v\n", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, unhealthyMarker), nil, 0o644); err != nil {
		fmt.Fprintf(stdout, "workload: cannot record unhealthiness: %v\n", err)
	}
}

// health is the probe: 0 healthy, 1 unhealthy (Docker's convention).
func health(getenv func(string) string, stdout io.Writer) int {
	if v, _ := strconv.ParseBool(getenv(envUnhealthy)); v {
		fmt.Fprintln(stdout, "unhealthy: configured to fail health checks")
		return 1
	}
	dir := getenv(envStateDir)
	if dir == "" {
		dir = defaultStateDir
	}
	if _, err := os.Stat(filepath.Join(dir, unhealthyMarker)); err == nil {
		fmt.Fprintln(stdout, "unhealthy: turned unhealthy, as configured")
		return 1
	}
	fmt.Fprintln(stdout, "healthy")
	return 0
}
