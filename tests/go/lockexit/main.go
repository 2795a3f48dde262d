// Goroutines that exit while locked to their thread: the runtime destroys
// the thread and creates another (thread churn).
//
// Usage: lockexit MILLISECONDS
// Prints "ready PID", waits for a line on stdin, then every 20 ms starts a
// handler that calls runtime.LockOSThread and returns without unlocking,
// for MILLISECONDS; prints "done N" (handlers run) and exits.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func handler(done chan<- struct{}) {
	runtime.LockOSThread()
	time.Sleep(time.Millisecond)
	done <- struct{}{}
}

func main() {
	ms, _ := strconv.Atoi(os.Args[1])
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	done := make(chan struct{})
	n := 0
	for time.Now().Before(stop) {
		go handler(done)
		<-done
		n++
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("done", n)
}
