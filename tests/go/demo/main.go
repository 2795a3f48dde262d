// The pintrace demo workload: a small Go program with the thread-level
// problems pintrace is built to show.
//
//   - GOMAXPROCS set to twice the CPUs, and as many CPU-bound goroutines:
//     more runnable threads than CPUs, so they wait in the kernel's run
//     queue, and sysmon preempts each with SIGURG every 10-20 ms.
//   - "Per-request pinning": every 20 ms a handler calls
//     runtime.LockOSThread and returns without unlocking, so the runtime
//     destroys its thread and creates another (thread churn, ~50/s).
//   - A worker pinned with LockOSThread that sits idle most of the time.
//
// Usage: demo [seconds]   (runs for that long, default 10, then exits)
package main

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func busy(stop time.Time, wg *sync.WaitGroup) {
	defer wg.Done()
	x := 0
	for time.Now().Before(stop) {
		for i := 0; i < 10000; i++ {
			x += i
		}
	}
	_ = x
}

func lockedHandler(done chan<- struct{}) {
	runtime.LockOSThread()
	// Forgot runtime.UnlockOSThread: the thread dies with the goroutine.
	time.Sleep(time.Millisecond)
	done <- struct{}{}
}

func pinnedWorker(stop time.Time) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for time.Now().Before(stop) {
		time.Sleep(100 * time.Millisecond)
	}
}

func main() {
	secs := 10
	if len(os.Args) > 1 {
		if n, err := strconv.Atoi(os.Args[1]); err == nil && n > 0 {
			secs = n
		}
	}
	stop := time.Now().Add(time.Duration(secs) * time.Second)
	procs := 2 * runtime.NumCPU()
	runtime.GOMAXPROCS(procs)
	var wg sync.WaitGroup
	for i := 0; i < procs; i++ {
		wg.Add(1)
		go busy(stop, &wg)
	}
	go pinnedWorker(stop)
	done := make(chan struct{}, 1)
	for time.Now().Before(stop) {
		go lockedHandler(done)
		<-done
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
}
