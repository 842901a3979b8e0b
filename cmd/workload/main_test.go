package main

import (
	"bytes"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", want: config{stateDir: defaultStateDir}},
		{
			name: "env sets defaults",
			env: map[string]string{
				envExitAfter: "2s", envExitCode: "3", envUnhealthy: "true",
				envFailAtStart: "1", envIgnoreTerm: "true", envStateDir: "/x",
			},
			want: config{exitAfter: 2 * time.Second, exitCode: 3, unhealthy: true,
				failAtStart: true, ignoreTerm: true, stateDir: "/x"},
		},
		{
			name: "flags override env",
			args: []string{"-exit-after", "1s", "-exit-code", "7"},
			env:  map[string]string{envExitAfter: "2s", envExitCode: "3"},
			want: config{exitAfter: time.Second, exitCode: 7, stateDir: defaultStateDir},
		},
		{name: "bad env", env: map[string]string{envExitAfter: "soon"}, wantErr: "WORKLOAD_EXIT_AFTER"},
		{name: "bad code", args: []string{"-exit-code", "300"}, wantErr: "outside 0..255"},
		{name: "max below min", args: []string{"-exit-after", "2s", "-exit-after-max", "1s"}, wantErr: "below"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.args, envOf(tt.env), &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFailAtStartExitsOne(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-fail-at-start"}, envOf(nil), &out, &out); code != 1 {
		t.Fatalf("exit code = %d, want 1", code)
	}
}

func TestExitAfterUsesCode(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-exit-after", "1ms", "-exit-code", "4"}, envOf(nil), &out, &out); code != 4 {
		t.Fatalf("exit code = %d, want 4 (output %q)", code, out.String())
	}
}

func TestTermExitsZero(t *testing.T) {
	// Catch TERM in the test too, so that a signal sent before serve has
	// installed its handler cannot kill the test binary.
	sink := make(chan os.Signal, 16)
	signal.Notify(sink, syscall.SIGTERM)
	defer signal.Stop(sink)

	done := make(chan int, 1)
	var out bytes.Buffer
	go func() { done <- serve(config{stateDir: t.TempDir()}, &out) }()
	// serve may not have reached signal.Notify yet: keep signalling until
	// it returns.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("exit code after TERM = %d, want 0", code)
			}
			return
		case <-tick.C:
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestHealth(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{envStateDir: dir}
	var out bytes.Buffer
	if code := run([]string{"health"}, envOf(env), &out, &out); code != 0 {
		t.Fatalf("fresh health = %d, want 0", code)
	}
	markUnhealthy(dir, &out)
	if code := run([]string{"health"}, envOf(env), &out, &out); code != 1 {
		t.Fatalf("health after marker = %d, want 1", code)
	}
	if code := run([]string{"health"}, envOf(map[string]string{envUnhealthy: "true", envStateDir: filepath.Join(dir, "none")}), &out, &out); code != 1 {
		t.Fatalf("health with %s = %d, want 1", envUnhealthy, code)
	}
}
