// GOMAXPROCS on request, for pintrace's Go-runtime reader test.
//
// Usage: maxprocs
// Prints "ready PID GOMAXPROCS NUMCPU", then for each line N on stdin calls
// runtime.GOMAXPROCS(N) and prints "set N" once it has returned (the new
// value is in runtime.gomaxprocs by then). Exits at the end of its input.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

func main() {
	fmt.Println("ready", os.Getpid(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		n, err := strconv.Atoi(strings.TrimSpace(in.Text()))
		if err != nil || n < 1 {
			fmt.Println("bad", in.Text())
			continue
		}
		runtime.GOMAXPROCS(n)
		fmt.Println("set", runtime.GOMAXPROCS(0))
	}
}
