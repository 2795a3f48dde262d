// Goroutines locked to their OS threads, the signal thread, and unpinned
// work: what pintrace's M-list reader must tell apart.
//
// Usage: pinned N [lockmain]
// Calls signal.Notify (the runtime then locks one thread to its
// signal-handling goroutine, runtime.ensureSigM.func1: usually the main
// thread, which runs that goroutine first; with "lockmain" the main
// goroutine locks the main thread before, so the signal goroutine gets
// another thread), starts N goroutines
// (main.pinnedWorker) that each call runtime.LockOSThread and park, plus two
// lightly busy and two idle unpinned goroutines, and prints "ready PID N"
// once all N are locked. On SIGUSR1 the first N/2 pinned goroutines call
// runtime.UnlockOSThread (and stay parked, unpinned); it then prints
// "unlocked K". Runs until its stdin closes or it is killed.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var (
	locked   sync.WaitGroup
	unlock   = make(chan struct{})
	unlocked = make(chan struct{})
	never    = make(chan struct{})
)

// Started without arguments, so that g.startpc is this function and not
// a compiler-made wrapper (main.main.func1, main.main.gowrap1).
func pinnedWorker() {
	runtime.LockOSThread()
	locked.Done()
	<-unlock
	runtime.UnlockOSThread()
	unlocked <- struct{}{}
	<-never
}

func busy() {
	for {
		end := time.Now().Add(time.Millisecond)
		for time.Now().Before(end) {
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func idle() {
	<-never
}

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 0 {
		fmt.Fprintln(os.Stderr, "usage: pinned N [lockmain]")
		os.Exit(2)
	}
	if len(os.Args) > 2 && os.Args[2] == "lockmain" {
		runtime.LockOSThread()
	}
	// Notify returns once the signal goroutine has locked its thread and
	// applied the mask (it waits for runtime.ensureSigM's reply).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)

	locked.Add(n)
	for i := 0; i < n; i++ {
		go pinnedWorker()
	}
	go busy()
	go busy()
	go idle()
	go idle()
	locked.Wait()
	fmt.Println("ready", os.Getpid(), n)

	go func() {
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}()
	for range sigs {
		k := n / 2
		for i := 0; i < k; i++ {
			unlock <- struct{}{}
		}
		for i := 0; i < k; i++ {
			<-unlocked
		}
		n -= k
		fmt.Println("unlocked", k)
	}
}
