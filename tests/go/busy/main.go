// Busy goroutines for pintrace's SIGURG test.
//
// Usage: busy GOROUTINES MILLISECONDS [GOMAXPROCS]
// Prints "ready PID", waits for a line on stdin, runs GOROUTINES CPU-bound
// goroutines for MILLISECONDS (sysmon preempts each with SIGURG every
// 10-20 ms), prints "done" and exits. With GOMAXPROCS above the CPUs, more
// threads are runnable than there are CPUs.
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

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	if len(os.Args) > 3 {
		procs, _ := strconv.Atoi(os.Args[3])
		runtime.GOMAXPROCS(procs)
	}
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for time.Now().Before(stop) {
				for j := 0; j < 1000; j++ {
					x += j
				}
			}
			_ = x
		}()
	}
	wg.Wait()
	fmt.Println("done")
}
