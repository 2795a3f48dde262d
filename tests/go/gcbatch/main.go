// A GC-heavy batch job: GOMAXPROCS workers build and drop maps and slices
// as fast as they can, so the collector runs many times a second (its
// stack scans send SIGURG from several threads). CPU-bound on purpose,
// with no goroutine waiting for a P: no finding.
//
// Usage: gcbatch MILLISECONDS
// Prints "ready PID", waits for a line on stdin, works for MILLISECONDS and
// prints "done N" (batches built).
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var batches int64

func main() {
	ms, _ := strconv.Atoi(os.Args[1])
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for time.Now().Before(stop) {
				m := make(map[int][]byte, 1000)
				for i := 0; i < 1000; i++ {
					m[i] = make([]byte, 256+i%512)
				}
				atomic.AddInt64(&batches, 1)
				// A pause now and then, as a batch job reading its input would.
				time.Sleep(200 * time.Microsecond)
			}
		}(w)
	}
	wg.Wait()
	fmt.Println("done", atomic.LoadInt64(&batches))
}
