// A pool of locked workers that recycles them: each worker locks its
// thread, serves 10 requests (a few ms each) and returns without
// unlocking, and a new worker takes its place. Each exit while locked
// destroys the thread (thread_churn), at a steady rate, in another shape
// than a locked goroutine per request.
//
// Usage: recycle WORKERS MILLISECONDS
// Prints "ready PID", waits for a line on stdin, runs for MILLISECONDS and
// prints "done N" (workers that ended).
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

var ended int64

func worker(requests <-chan int, exited chan<- struct{}) {
	runtime.LockOSThread()
	for i := 0; i < 10; i++ {
		<-requests
		end := time.Now().Add(2 * time.Millisecond)
		for time.Now().Before(end) {
		}
	}
	atomic.AddInt64(&ended, 1)
	exited <- struct{}{}
	// Returns still locked: the runtime ends this thread.
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	requests := make(chan int)
	exited := make(chan struct{}, n)
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	for i := 0; i < n; i++ {
		go worker(requests, exited)
	}
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	go func() {
		for range exited {
			go worker(requests, exited)
		}
	}()
	tick := time.NewTicker(4 * time.Millisecond)
	for now := range tick.C {
		if now.After(stop) {
			break
		}
		select {
		case requests <- 1:
		default:
		}
	}
	fmt.Println("done", atomic.LoadInt64(&ended))
}
