// A server that locks the handling goroutine to its thread for every
// request (LockOSThread per request) while the handler blocks: the runtime
// needs a thread per request in flight, so threads grow with the load
// (thread_growth).
//
// Usage: perrequest RATE MILLISECONDS
// Prints "ready PID", waits for a line on stdin, then starts RATE requests
// a second, each locked for 100 ms, for MILLISECONDS; prints "done N".
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

//go:noinline
func handle(wg *sync.WaitGroup) {
	defer wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// A blocking call on a locked thread: the runtime must hand the P to another thread.
	time.Sleep(100 * time.Millisecond)
}

func main() {
	rate, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	every := time.Second / time.Duration(rate)
	n := 0
	for next := time.Now(); next.Before(stop); next = next.Add(every) {
		time.Sleep(time.Until(next))
		wg.Add(1)
		go handle(&wg)
		n++
	}
	wg.Wait()
	fmt.Println("done", n)
}
