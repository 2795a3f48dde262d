// A healthy service: a pool of worker goroutines handling short requests
// that allocate (so the GC runs and sends its own SIGURGs), fewer runnable
// goroutines than CPUs, no locked threads.
//
// Usage: healthy MILLISECONDS
// Prints "ready PID", waits for a line on stdin, serves for MILLISECONDS,
// prints "done N" (requests served) and exits.
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

var sink [][]byte

func serve(req int) {
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(req + i)
	}
	if req%16 == 0 {
		sink = append(sink[:0], buf)
	}
}

func main() {
	ms, _ := strconv.Atoi(os.Args[1])
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	reqs := make(chan int, 64)
	var served int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range reqs {
				serve(r)
				atomic.AddInt64(&served, 1)
			}
		}()
	}
	for i := 0; time.Now().Before(stop); i++ {
		reqs <- i
		time.Sleep(2 * time.Millisecond)
	}
	close(reqs)
	wg.Wait()
	fmt.Println("done", served)
}
