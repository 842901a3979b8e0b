// Package orchestrator here breaks every engine rule on purpose: the
// architecture test checks that its checker notices each breach.
package orchestrator

import (
	crand "crypto/rand"
	"fmt"
	"os"
	"sync"
	t "time"

	_ "github.com/swarmsim/swarmsim/engine/scheduler"
	_ "github.com/swarmsim/swarmsim/sim"
	_ "go.etcd.io/raft/v3"
)

var mu sync.Mutex

func bad() {
	ch := make(chan int)
	go func() { ch <- 1 }()
	select {
	case v := <-ch:
		fmt.Println(v, t.Now())
	}
	t.AfterFunc(0, nil)
	_, _ = os.Getwd()
	_, _ = crand.Read(nil)
}
