// A healthy closed-loop pipeline: STAGES goroutines hand each request to
// the next over unbuffered channels, INFLIGHT requests circulate, and each
// stage does a few microseconds of work. Goroutines that hand off through
// runnext share one time slice, so sysmon preempts the P now and then,
// although no goroutine runs long and none waits: no finding.
//
// Usage: pipeline STAGES INFLIGHT MILLISECONDS
// Prints "ready PID", waits for a line on stdin, runs for MILLISECONDS and
// prints "done N" (requests that went round).
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

var sink uint64

func work(x uint64) uint64 {
	for i := 0; i < 2000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

func main() {
	stages, _ := strconv.Atoi(os.Args[1])
	inflight, _ := strconv.Atoi(os.Args[2])
	ms, _ := strconv.Atoi(os.Args[3])
	first := make(chan uint64)
	in := first
	for i := 0; i < stages; i++ {
		out := make(chan uint64)
		go func(in <-chan uint64, out chan<- uint64) {
			for v := range in {
				out <- work(v)
			}
		}(in, out)
		in = out
	}
	last := in
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	var rounds int64
	for i := 0; i < inflight; i++ {
		go func(v uint64) { first <- v }(uint64(i))
	}
	for time.Now().Before(stop) {
		v := <-last
		atomic.AddUint64(&sink, v)
		rounds++
		go func(v uint64) { first <- v }(v)
	}
	fmt.Println("done", rounds)
}
