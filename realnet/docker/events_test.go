package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/swarmsim/swarmsim/engine/env"
)

// fakeEvents is an API whose event stream the test scripts; every other
// call panics (the embedded nil interface), since these tests make none.
type fakeEvents struct {
	API
	mu      sync.Mutex
	streams [][]events.Message // one per subscription; each ends in an error
	since   []string
}

func (f *fakeEvents) Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult {
	f.mu.Lock()
	f.since = append(f.since, opts.Since)
	var script []events.Message
	last := len(f.streams) == 0
	if !last {
		script, f.streams = f.streams[0], f.streams[1:]
	}
	f.mu.Unlock()
	msgs := make(chan events.Message)
	errs := make(chan error, 1)
	go func() {
		for _, m := range script {
			select {
			case msgs <- m:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
		if last {
			<-ctx.Done() // the final stream stays open
			errs <- ctx.Err()
			return
		}
		errs <- errors.New("stream broke")
	}()
	return client.EventsResult{Messages: msgs, Err: errs}
}

func msg(node, task string, action events.Action, nano int64, attrs ...string) events.Message {
	a := map[string]string{LabelNodeID: node, LabelTaskID: task}
	for i := 0; i+1 < len(attrs); i += 2 {
		a[attrs[i]] = attrs[i+1]
	}
	return events.Message{
		Type:     events.ContainerEventType,
		Action:   action,
		Actor:    events.Actor{ID: "c-" + task, Attributes: a},
		TimeNano: nano,
	}
}

// TestEventStream: the daemon's events become ContainerEvents; events of
// other nodes are ignored; an event stamped before one already seen is
// still new (two containers starting at once publish in either order);
// after the stream breaks the executor asks again from a little before
// the newest event it saw and drops the replayed duplicates.
func TestEventStream(t *testing.T) {
	const me = "n1"
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	fake := &fakeEvents{streams: [][]events.Message{
		{
			msg(me, "t1", events.ActionStart, base+1),
			msg("n2", "t9", events.ActionStart, base+2), // not ours
			msg(me, "t1", events.ActionHealthStatusHealthy, base+3),
			msg(me, "t1", events.ActionHealthStatusUnhealthy, base+4),
			msg(me, "t3", events.ActionStart, base+3), // stamped earlier, published later
		},
		{
			msg(me, "t3", events.ActionStart, base+3),                 // replayed
			msg(me, "t1", events.ActionHealthStatusUnhealthy, base+4), // replayed
			msg(me, "t1", events.ActionDie, base+5, "exitCode", "137"),
			msg(me, "t2", events.ActionDie, base+5, "exitCode", "2"), // same instant, other container
		},
		{
			msg(me, "t1", events.ActionDestroy, base+6),
		},
	}}
	loop := newTestLoop(t)
	ex, err := New(fake, loop, me, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	got := make(chan env.ContainerEvent, 16)
	loop.Post(func() { ex.SetEventHandler(func(ev env.ContainerEvent) { got <- ev }) })

	want := []env.ContainerEvent{
		{TaskID: "t1", State: env.ContainerRunning},
		{TaskID: "t1", State: env.ContainerRunning, Health: env.HealthHealthy},
		{TaskID: "t1", State: env.ContainerRunning, Health: env.HealthUnhealthy},
		{TaskID: "t3", State: env.ContainerRunning},
		{TaskID: "t1", State: env.ContainerExited, ExitCode: 137},
		{TaskID: "t2", State: env.ContainerExited, ExitCode: 2},
		{TaskID: "t1", State: env.ContainerRemoved},
	}
	var seen []env.ContainerEvent
	for len(seen) < len(want) {
		select {
		case ev := <-got:
			seen = append(seen, ev)
		case <-time.After(waitLimit):
			t.Fatalf("events so far %+v, want %+v", seen, want)
		}
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("events = %+v\nwant     %+v", seen, want)
	}
	ex.Close()
	select {
	case ev := <-got:
		t.Errorf("extra event %+v", ev)
	default:
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	since := func(nano int64) string {
		nano -= int64(eventReplay)
		return fmt.Sprintf("%d.%09d", nano/1e9, nano%1e9)
	}
	if len(fake.since) < 3 || fake.since[0] != "" || fake.since[1] != since(base+4) || fake.since[2] != since(base+5) {
		t.Errorf("subscriptions since %q, want none, then %v before the newest event's time each time", fake.since, eventReplay)
	}
}

func TestContainerNameIsDockerSafe(t *testing.T) {
	ex := &Executor{node: "node/1", opts: Options{NamePrefix: "swarmsim"}}
	if got, want := ex.ContainerName("task:a b"), "swarmsim-node_1-task_a_b"; got != want {
		t.Errorf("ContainerName = %q, want %q", got, want)
	}
}
