// A pool of locked workers fed unevenly, as a request router with a hot
// key would: WORKERS goroutines each lock their thread and serve their own
// queue; half the requests go to worker 0, the rest spread over the
// others. Worker 0 cannot keep up: it is on a CPU or waiting for one all
// the time, sharing the CPUs with the others, which idle between small
// requests and wake on whichever CPU is free (pinned_starvation, and no
// pinned_migration: a sleeping thread's wake-up CPU costs nothing more).
//
// Usage: pool WORKERS REQUESTS_PER_SEC MILLISECONDS [HOT_COST]
// A request costs about 50 µs of CPU, HOT_COST times that (default 1) for
// worker 0. Prints "ready PID", waits for a line on stdin, runs for
// MILLISECONDS and prints "done N SHED" (requests served, and shed because
// the hot worker's queue was full).
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
)

var sink uint64

// About 50 µs of work per unit of cost.
func serve(x uint64, cost int) uint64 {
	for i := 0; i < 40000*cost; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

var (
	queueOf = make(chan chan uint64)
	served  int64
)

func worker(cost int) {
	runtime.LockOSThread()
	for v := range <-queueOf {
		atomic.AddUint64(&sink, serve(v, cost))
		atomic.AddInt64(&served, 1)
	}
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	rate, _ := strconv.Atoi(os.Args[2])
	ms, _ := strconv.Atoi(os.Args[3])
	hot := 1
	if len(os.Args) > 4 {
		hot, _ = strconv.Atoi(os.Args[4])
	}
	queues := make([]chan uint64, n)
	for i := range queues {
		queues[i] = make(chan uint64, 1<<12)
		cost := 1
		if i == 0 {
			cost = hot
		}
		go worker(cost)
		queueOf <- queues[i]
	}
	var shed int64
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	tick := time.NewTicker(time.Millisecond)
	per := rate / 1000
	k := 0
	for now := range tick.C {
		if now.After(stop) {
			break
		}
		for i := 0; i < per; i++ {
			q := 0
			if i%2 == 1 {
				q = 1 + k%(n-1)
				k++
			}
			select {
			case queues[q] <- uint64(i):
			default: // the worker's queue is full: the request is shed
				shed++
			}
		}
	}
	fmt.Println("done", atomic.LoadInt64(&served), shed)
}
