// A pool of pinned workers fed unevenly: worker 0 gets all the heavy work
// and is saturated, the others are woken 50 times a second for a trickle
// each (pinned_starvation).
//
// Usage: starve WORKERS MILLISECONDS
// Prints "ready PID", waits for a line on stdin, runs for MILLISECONDS and
// prints "done N" (trickle messages handled).
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

func spin(d time.Duration) {
	end := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(end) {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	atomic.AddUint64(&sink, x)
}

var (
	// Each worker takes its queue from here: a goroutine started without
	// arguments keeps its own name as its start function (`go f(x)` starts a
	// compiler-made wrapper), so pintrace can say who pinned the thread.
	queueOf = make(chan chan time.Duration)
	handled int64
)

func worker() {
	runtime.LockOSThread()
	for d := range <-queueOf {
		spin(d)
		atomic.AddInt64(&handled, 1)
	}
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	queues := make([]chan time.Duration, n)
	for i := range queues {
		queues[i] = make(chan time.Duration, 1024)
		go worker()
		queueOf <- queues[i]
	}
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(stop) {
		<-tick.C
		// The hot worker always has 20 ms of work queued: it never idles.
		for len(queues[0]) < 2 {
			queues[0] <- 20 * time.Millisecond
		}
		for _, q := range queues[1:] {
			q <- 50 * time.Microsecond
		}
	}
	fmt.Println("done", atomic.LoadInt64(&handled))
}
