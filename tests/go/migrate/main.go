// Busy pinned workers whose threads are moved between CPUs under them:
// each locks its goroutine to its thread and computes without pause, while
// a manager goroutine sets every worker thread's affinity to the next CPU
// every 100 ms, as a rebalancing agent or an operator with taskset would
// (pinned_migration: the moves land on threads that are running).
//
// Usage: migrate WORKERS MILLISECONDS [self]
// Prints "ready PID", waits for a line on stdin, runs for MILLISECONDS and
// prints "done N" (affinity changes made). With "self", each worker sets
// its own affinity and sleeps between moves instead: it blocks while the
// kernel moves it, so the move happens as it wakes, which costs nothing a
// wake-up elsewhere would not (no finding).
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

func setAffinity(tid, cpu int) error {
	var mask [16]uint64
	mask[cpu/64] |= 1 << (cpu % 64)
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
	if e != 0 {
		return e
	}
	return nil
}

var sink uint64

func spinFor(d time.Duration) {
	end := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(end) {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	atomic.AddUint64(&sink, x)
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	self := len(os.Args) > 3 && os.Args[3] == "self"
	cpus := runtime.NumCPU()
	if self {
		// The main thread too keeps to one CPU: the process still uses
		// them all (affinity is per thread).
		runtime.LockOSThread()
		if err := setAffinity(0, 0); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	stop := time.Duration(ms) * time.Millisecond
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	var moves int64
	tids := make([]int, n)
	for i := 0; i < n; i++ {
		ready.Add(1)
		done.Add(1)
		go func(i int) {
			defer done.Done()
			runtime.LockOSThread()
			tids[i] = syscall.Gettid()
			ready.Done()
			<-start
			end := time.Now().Add(stop)
			for k := i; time.Now().Before(end); k++ {
				if !self {
					spinFor(10 * time.Millisecond)
					continue
				}
				if err := setAffinity(0, k%cpus); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				atomic.AddInt64(&moves, 1)
				spinFor(2 * time.Millisecond)
				time.Sleep(100 * time.Millisecond)
			}
		}(i)
	}
	ready.Wait()
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	close(start)
	if !self {
		end := time.Now().Add(stop)
		for k := 0; time.Now().Before(end); k++ {
			for i, tid := range tids {
				if err := setAffinity(tid, (k+i)%cpus); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				atomic.AddInt64(&moves, 1)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	done.Wait()
	fmt.Println("done", atomic.LoadInt64(&moves))
}
