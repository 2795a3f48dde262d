// Goroutines inside blocking cgo calls: each calls a C function that
// sleeps. A goroutine in a cgo call holds its thread, so the threads grow
// with the calls (thread_growth, in cgo).
//
// Usage: cgocalls GOROUTINES MILLISECONDS
// Prints "ready PID", waits for a line on stdin, starts the goroutines,
// waits MILLISECONDS and prints "done N" (goroutines started).
package main

/*
#include <errno.h>
#include <time.h>
// The whole time, even when a signal (the runtime's SIGURG) interrupts
// the sleep: an early return would end the goroutine and free its thread.
static void block_for(unsigned ms) {
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) != 0 && errno == EINTR) {
	}
}
*/
import "C"

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	for i := 0; i < n; i++ {
		go C.block_for(C.uint(ms + 5000))
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	fmt.Println("done", n)
}
