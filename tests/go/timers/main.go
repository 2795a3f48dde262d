// Thousands of goroutines on timers: 5,000 goroutines each wake every
// 100-600 ms, do a little work and sleep again (heartbeats, cache
// refreshes). No finding.
//
// Usage: timers GOROUTINES MILLISECONDS
// Prints "ready PID", waits for a line on stdin, runs for MILLISECONDS and
// prints "done N" (wake-ups).
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var wakeups int64
var sink uint64

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			period := time.Duration(100+i%500) * time.Millisecond
			t := time.NewTicker(period)
			defer t.Stop()
			x := uint64(i)
			for now := range t.C {
				if now.After(stop) {
					return
				}
				for k := 0; k < 200; k++ {
					x = x*6364136223846793005 + 1442695040888963407
				}
				atomic.AddUint64(&sink, x)
				atomic.AddInt64(&wakeups, 1)
			}
		}(i)
	}
	wg.Wait()
	fmt.Println("done", atomic.LoadInt64(&wakeups))
}
