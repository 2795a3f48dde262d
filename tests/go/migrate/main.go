// Pinned workers whose threads move between CPUs: each locks its goroutine
// to its thread, then every 100 ms sets that thread's affinity to the next
// CPU, as a scheduler rebalancing would (pinned_migration).
//
// Usage: migrate WORKERS MILLISECONDS
// Prints "ready PID", waits for a line on stdin, runs for MILLISECONDS and
// prints "done N" (affinity changes made).
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

func setAffinity(cpu int) error {
	var mask [16]uint64
	mask[cpu/64] |= 1 << (cpu % 64)
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
	if e != 0 {
		return e
	}
	return nil
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	cpus := runtime.NumCPU()
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	var moves int64
	stop := time.Duration(ms) * time.Millisecond
	for i := 0; i < n; i++ {
		ready.Add(1)
		done.Add(1)
		go func(i int) {
			defer done.Done()
			runtime.LockOSThread()
			ready.Done()
			<-start
			end := time.Now().Add(stop)
			for k := i; time.Now().Before(end); k++ {
				if err := setAffinity(k % cpus); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				atomic.AddInt64(&moves, 1)
				// A little work on the new CPU, then wait for the next move.
				spinEnd := time.Now().Add(2 * time.Millisecond)
				for time.Now().Before(spinEnd) {
				}
				time.Sleep(100 * time.Millisecond)
			}
		}(i)
	}
	ready.Wait()
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	close(start)
	done.Wait()
	fmt.Println("done", atomic.LoadInt64(&moves))
}
