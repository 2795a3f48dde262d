// LockOSThread and UnlockOSThread in a tight loop: what a uprobe on
// runtime.LockOSThread costs the traced program per call.
//
// Usage: lockloop N
// Prints "ready PID" and waits for a line on stdin; then calls
// runtime.LockOSThread() and runtime.UnlockOSThread() N times on the main
// goroutine, prints "elapsed NS" (the loop's wall time in nanoseconds) and
// exits. UnlockOSThread is inlined by the compiler; LockOSThread is a call.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lockloop N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 0 {
		fmt.Fprintln(os.Stderr, "usage: lockloop N")
		os.Exit(2)
	}
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	start := time.Now()
	for i := 0; i < n; i++ {
		runtime.LockOSThread()
		runtime.UnlockOSThread()
	}
	fmt.Println("elapsed", time.Since(start).Nanoseconds())
}
