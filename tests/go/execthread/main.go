// execthread execs from a thread that is not the main one, as Go's
// syscall.Exec does from whatever thread runs the goroutine: the kernel
// gives the exec'ing thread the process's PID (the leader's TID) and ends
// every other thread. `execthread N FINAL...` execs itself N more times,
// spinning 100 ms before each exec, then execs FINAL (default: sleep 1).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "usage: execthread N [FINAL...]")
		os.Exit(2)
	}
	final := os.Args[2:]
	if len(final) == 0 {
		final = []string{"/bin/sleep", "1"}
	}
	// The main goroutine keeps the main thread: the exec runs on another.
	runtime.LockOSThread()
	go func() {
		runtime.LockOSThread()
		deadline := time.Now().Add(100 * time.Millisecond)
		for time.Now().Before(deadline) {
		}
		if syscall.Gettid() == syscall.Getpid() {
			fmt.Fprintln(os.Stderr, "execthread: the exec would run on the main thread")
			os.Exit(1)
		}
		var argv []string
		path := "/proc/self/exe"
		if n > 0 {
			argv = append([]string{os.Args[0], strconv.Itoa(n - 1)}, final...)
		} else {
			path, argv = final[0], final
		}
		err := syscall.Exec(path, argv, os.Environ())
		fmt.Fprintln(os.Stderr, "execthread: exec:", err)
		os.Exit(1)
	}()
	select {}
}
