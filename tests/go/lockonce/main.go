// A program that locks its main goroutine to the main thread once, at
// start, as a C library that must be called from one thread requires, and
// serves calls to it over a channel from a few worker goroutines; a
// signal.Notify handler too. Expected pins, nothing per request: no
// finding.
//
// Usage: lockonce MILLISECONDS
// Prints "ready PID", waits for a line on stdin, runs for MILLISECONDS and
// prints "done N" (calls made).
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

func init() { runtime.LockOSThread() }

type call struct {
	arg   uint64
	reply chan uint64
}

func library(x uint64) uint64 {
	for i := 0; i < 2000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

func main() {
	ms, _ := strconv.Atoi(os.Args[1])
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	calls := make(chan call)
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	var wg sync.WaitGroup
	n := 0
	var mu sync.Mutex
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply := make(chan uint64)
			for time.Now().Before(stop) {
				calls <- call{uint64(w), reply}
				<-reply
				mu.Lock()
				n++
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case c := <-calls:
			c.reply <- library(c.arg)
		case <-sigs:
		case <-done:
			fmt.Println("done", n)
			return
		}
	}
}
