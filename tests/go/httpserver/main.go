// A healthy HTTP service under moderate load over loopback: a net/http
// server and 8 clients in the same process, each making a request every
// 2 ms; handlers do a little JSON work. No finding.
//
// Usage: httpserver MILLISECONDS
// Prints "ready PID", waits for a line on stdin, serves for MILLISECONDS
// and prints "done N" (requests served).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var served int64

func main() {
	ms, _ := strconv.Atoi(os.Args[1])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		v := map[string]int{}
		for i := 0; i < 50; i++ {
			v[strconv.Itoa(i)] = i * i
		}
		json.NewEncoder(w).Encode(v)
		atomic.AddInt64(&served, 1)
	})
	go http.Serve(ln, nil)
	url := "http://" + ln.Addr().String() + "/"
	fmt.Println("ready", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')
	stop := time.Now().Add(time.Duration(ms) * time.Millisecond)
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{}
			for time.Now().Before(stop) {
				resp, err := client.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	fmt.Println("done", atomic.LoadInt64(&served))
}
