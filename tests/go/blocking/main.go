// Goroutines blocked in raw system calls: each reads from a pipe nobody
// writes to, with syscall.Read, which the runtime cannot hand to its
// netpoller. Each blocked call holds a thread, so the threads grow to
// GOROUTINES + GOMAXPROCS + a few (thread_growth, in syscalls).
//
// Usage: blocking GOROUTINES MILLISECONDS
// Prints "ready PID", waits for a line on stdin, starts the goroutines,
// waits MILLISECONDS and prints "done N" (goroutines started).
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	for i := 0; i < n; i++ {
		var p [2]int
		if err := syscall.Pipe(p[:]); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		go func(fd int) {
			var b [1]byte
			syscall.Read(fd, b[:])
		}(p[0])
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	fmt.Println("done", n)
}
